package safeio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRefusesNonRegular: a FIFO, a device and a directory are refused at
// once, naming what they are; a FIFO never blocks the open.
func TestRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, "named pipe"},
		{"/dev/zero", "character device"},
		{dir, "directory"},
	} {
		done := make(chan error, 1)
		go func() { _, err := ReadFileLimit(c.path, SideFileLimit); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("ReadFileLimit(%s) = %v, want ErrNotRegular naming the file and %q", c.path, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadFileLimit(%s) blocked", c.path)
		}
	}
	// A symlink to a regular file is followed.
	reg := filepath.Join(dir, "reg")
	if err := os.WriteFile(reg, []byte("ok"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(reg, link); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFileLimit(link, 10); err != nil || string(b) != "ok" {
		t.Errorf("ReadFileLimit(symlink to a file) = %q, %v", b, err)
	}
}

// TestLimit: a file over the limit is refused before it is read, naming
// the file and the limit; one at the limit is read whole.
func TestLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, make([]byte, 1001), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFileLimit(p, 1000)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != 1000 || le.Size != 1001 || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "1000 bytes") {
		t.Errorf("ReadFileLimit(1001 bytes, 1000) = %v, want a LimitError naming the file and the limit", err)
	}
	if b, err := ReadFileLimit(p, 1001); err != nil || len(b) != 1001 {
		t.Errorf("ReadFileLimit(1001 bytes, 1001) = %d bytes, %v", len(b), err)
	}
}

// TestReadLimitStream: a reader that lies about its size (or has none)
// is cut at the limit, and memory stays near the limit.
func TestReadLimitStream(t *testing.T) {
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	_, err = ReadLimit(f, "/dev/zero", 10, 1<<20)
	var le *LimitError
	if !errors.As(err, &le) || le.Size != -1 {
		t.Errorf("ReadLimit(/dev/zero, 1 MiB) = %v, want a LimitError", err)
	}
}
