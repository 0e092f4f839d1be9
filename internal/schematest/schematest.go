// Package schematest validates JSON documents written by qinsaudit against
// the JSON Schemas published in docs/, so that the schemas and the code
// cannot drift apart. It is for tests only.
package schematest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	once    sync.Once
	schemas map[string]*jsonschema.Schema
	loadErr error
)

// root finds the repository root: the directory holding go.mod.
func root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

func load() {
	r, err := root()
	if err != nil {
		loadErr = err
		return
	}
	c := jsonschema.NewCompiler()
	schemas = map[string]*jsonschema.Schema{}
	for _, name := range []string{"report", "diff"} {
		s, err := c.Compile(filepath.Join(r, "docs", name+".schema.json"))
		if err != nil {
			loadErr = err
			return
		}
		schemas[name] = s
	}
}

// Validate fails t unless data follows its schema (see Check).
func Validate(t testing.TB, data []byte) {
	t.Helper()
	if err := Check(data); err != nil {
		t.Errorf("JSON output does not follow its schema: %v", err)
	}
}

// Check validates a JSON document against docs/report.schema.json, or
// docs/diff.schema.json when its "kind" is "diff".
func Check(data []byte) error {
	once.Do(load)
	if loadErr != nil {
		return loadErr
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	var head struct {
		Kind string `json:"kind"`
	}
	json.Unmarshal(data, &head)
	s := schemas["report"]
	if head.Kind == "diff" {
		s = schemas["diff"]
	}
	return s.Validate(doc)
}
