// Package realworld gives tests the real files of shared/realworld (from
// public projects, beside the repository) and their ground truth,
// answers.json. Tests skip when the folder is not there.
package realworld

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Answer is what PyTorch and the formats' headers say of one file.
type Answer struct {
	Format      string `json:"format"`
	SizeBytes   int64  `json:"size_bytes"`
	StoredBytes int64  `json:"stored_bytes"` // each storage once
	Tensors     int    `json:"tensors"`
}

// Dir returns the path of shared/realworld: beside the repository root,
// found from the working directory.
func Dir() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared", "realworld")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Join("..", "shared", "realworld")
		}
		dir = parent
	}
}

// Answers reads answers.json, keyed by the file's path under Dir, or skips
// the test when the folder is absent.
func Answers(t testing.TB) map[string]Answer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Dir(), "answers.json"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("shared/realworld is not beside the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	var answers map[string]Answer
	if err := json.Unmarshal(data, &answers); err != nil {
		t.Fatal(err)
	}
	return answers
}
