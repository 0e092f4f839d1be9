package html_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/qinsaudit/qinsaudit/internal/realworld"
	"github.com/qinsaudit/qinsaudit/report/html/htmltest"
)

// TestRealWorldPages renders the page of every real-world model file in
// shared/realworld (when it is there) and checks it against its JSON.
func TestRealWorldPages(t *testing.T) {
	root := realworld.Dir()
	if _, err := os.Stat(root); err != nil {
		t.Skip("shared/realworld is not beside the repository")
	}
	n := 0
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rep, err := auditPath(path)
		if err != nil {
			return nil // not a model, or refused: the loaders' tests judge that
		}
		t.Run(path[len(root)+1:], func(t *testing.T) {
			htmltest.Check(t, page(t, rep))
		})
		n++
		return nil
	})
	if n == 0 {
		t.Error("no model in shared/realworld audited")
	}
}
