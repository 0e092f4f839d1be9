// Package gguf reads the tensor table of gguf files. (Being written.)
package gguf

import (
	"errors"
	"io"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Loader reads gguf files.
type Loader struct{}

// Name returns "gguf".
func (Loader) Name() string { return "gguf" }

// Sniff reports whether head looks like a gguf file.
func (Loader) Sniff(head []byte) bool { return false }

// Load is not written yet.
func (Loader) Load(r io.ReaderAt, size int64) (*accounting.Model, error) {
	return nil, errors.New("gguf: not implemented")
}
