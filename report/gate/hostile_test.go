package gate

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNumbersRefused: NaN, infinities, zero and negative limits are refused
// in YAML (with the line) and in TOML, whatever the spelling; a NaN limit
// once made every comparison false and the gate pass.
func TestNumbersRefused(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"nan.yaml", "budgets:\n  - role: total\n    min_ratio: .nan\n", "nan.yaml:3: budgets[0]: min_ratio NaN"},
		{"inf.yaml", "budgets:\n  - role: total\n    max_bits_per_weight: .inf\n", "inf.yaml:3: budgets[0]: max_bits_per_weight +Inf"},
		{"neg.yaml", "budgets:\n  - role: total\n    min_ratio: 1\n  - role: embedding\n    max_bits_per_weight: -4\n", "neg.yaml:5: budgets[1]: max_bits_per_weight -4"},
		{"heap.yaml", "max_heap_over_stored: .nan\n", "heap.yaml:1: max_heap_over_stored NaN"},
		{"zero.yaml", "budgets:\n  - role: total\n    min_ratio: 0\n", "min_ratio 0: want a finite positive number"},
		{"nan.toml", "[[budgets]]\nrole = \"total\"\nmin_ratio = nan\n", "nan.toml:3: budgets[0]: min_ratio NaN"},
		{"inf.toml", "[[budgets]]\nrole = \"total\"\nmin_ratio = 2\n\n[[budgets]]\nrole = \"total\"\nmax_bits_per_weight = -inf\n", "inf.toml:7: budgets[1]: max_bits_per_weight -Inf"},
		{"heap.toml", "# a comment\nmax_heap_over_stored = inf\n", "heap.toml:2: max_heap_over_stored +Inf"},
		{"inline.toml", "budgets = [{role = \"total\", min_ratio = -1}]\n", "inline.toml: budgets[0]: min_ratio -1"},
		{"growth.yaml", "against:\n  report: x.json\n  max_growth: NaN%\n", "line 3: bad percentage \"NaN%\""},
		{"growth.toml", "[against]\nreport = \"x.json\"\nmax_growth = \"inf%\"\n", "bad percentage \"inf%\""},
		{"size.yaml", "budgets:\n  - role: total\n    max_stored_bytes: -5\n", "bad size \"-5\""},
		{"huge.yaml", "budgets:\n  - role: total\n    max_stored_bytes: 99999999999999999999\n", "bad size"},
	} {
		want := c.want
		_, err := Parse(c.name, []byte(c.data))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", c.name, err, want)
		}
	}
	for _, v := range []float64{1, 0.5, 1e6} {
		if err := CheckLimit("x", v); err != nil {
			t.Errorf("CheckLimit(%v) = %v", v, err)
		}
	}
}

// TestLongValueClipped: a long string in a config (Load reads at most 4
// MiB; 50 MB strings were echoed whole) comes back clipped in the error.
func TestLongValueClipped(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	for name, data := range map[string]string{
		"long.toml": "[[budgets]]\nrole = \"" + long + "\"\nmin_ratio = 2\n",
		"long.yaml": "budgets:\n  - role: " + long + "\n    min_ratio: 2\n",
		"key.toml":  long + " = 1\n",
	} {
		_, err := Parse(name, []byte(data))
		if err == nil || len(err.Error()) > 1024 {
			n := 0
			if err != nil {
				n = len(err.Error())
			}
			t.Errorf("Parse(%s): error of %d bytes, want an error under 1 KiB", name, n)
		}
	}
}

// TestLoadSideFiles: only regular files under the limit are read; a FIFO
// never blocks, /dev/zero is never read.
func TestLoadSideFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	zero := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxConfigBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, "named pipe"},
		{zero, "character device"},
		{big, "over the limit of 4194304 bytes"},
	} {
		done := make(chan error, 1)
		go func() { _, err := Load(c.path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("Load(%s) = %v, want an error naming it and %q", c.path, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Load(%s) blocked", c.path)
		}
	}
}
