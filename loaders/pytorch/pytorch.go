// Package pytorch reads the tensor table of pytorch files. (Being written.)
package pytorch

import (
	"errors"
	"io"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Loader reads pytorch files.
type Loader struct{}

// Name returns "pytorch".
func (Loader) Name() string { return "pytorch" }

// Sniff reports whether head looks like a pytorch file.
func (Loader) Sniff(head []byte) bool { return false }

// Load is not written yet.
func (Loader) Load(r io.ReaderAt, size int64) (*accounting.Model, error) {
	return nil, errors.New("pytorch: not implemented")
}
