package accounting

import "fmt"

// FormatError reports malformed input: which file, where in it, which tensor
// and what is wrong. Loaders fill Format, Offset, Tensor and Msg; the code
// that opened the file fills Path.
type FormatError struct {
	Path   string // file path; "" until the opener sets it
	Format string // "safetensors", "pytorch-zip", ...
	Offset int64  // byte offset in the file, -1 when unknown
	Tensor string // tensor name, "" when not about one tensor
	Msg    string
}

func (e *FormatError) Error() string {
	s := e.Path
	if e.Offset >= 0 {
		s += fmt.Sprintf("@%#x", e.Offset)
	}
	if s != "" {
		s += ": "
	}
	if e.Format != "" {
		s += e.Format + ": "
	}
	if e.Tensor != "" {
		s += fmt.Sprintf("tensor %q: ", e.Tensor)
	}
	return s + e.Msg
}

// Errorf returns a FormatError for format at offset (-1 if unknown).
func Errorf(format string, offset int64, tensor, msg string, args ...any) *FormatError {
	return &FormatError{Format: format, Offset: offset, Tensor: tensor, Msg: fmt.Sprintf(msg, args...)}
}
