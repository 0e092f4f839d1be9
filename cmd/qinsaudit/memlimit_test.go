package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/internal/racetest"
)

// childEnv makes the test binary run the command line in its arguments
// (after "--") instead of the tests: TestMemoryLimited runs qinsaudit in a
// child process whose address space is limited.
const childEnv = "QINSAUDIT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Exit(run(os.Args[i+1:], os.Stdout, os.Stderr))
			}
		}
		os.Exit(99)
	}
	os.Exit(m.Run())
}

// childLimitKiB is the address space the child may map (ulimit -v): 2 GiB,
// of which the Go runtime reserves much up front (at 1 GiB a 20 MiB
// allocation already failed with 33 MiB in use). The tcmalloc lines took
// 3.5 GB before they were bounded, the proto samples 2.2 GB.
const childLimitKiB = 2 << 20

// runLimitedChild runs the command line in a child of limited memory and
// returns its stderr and exit code.
func runLimitedChild(t *testing.T, args ...string) (string, int) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh for ulimit")
	}
	cmdline := fmt.Sprintf(`ulimit -v %d && exec "$0" -test.run=^$ -- "$@"`, childLimitKiB)
	c := exec.Command(sh, append([]string{"-c", cmdline, os.Args[0]}, args...)...)
	c.Env = append(os.Environ(), childEnv+"=1")
	var stderr bytes.Buffer
	c.Stdout, c.Stderr = nil, &stderr
	err = c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), code
}

// TestMemoryLimited: hostile inputs of a few hundred KB, each of which took
// gigabytes (or blew up the output), end as an error or a bounded output
// in a process limited to 2 GiB of address space: no out-of-memory death.
func TestMemoryLimited(t *testing.T) {
	racetest.SkipAllocs(t) // the race detector maps more than the ulimit allows
	if testing.Short() {
		t.Skip("builds inputs of tens of MiB uncompressed")
	}
	dir := t.TempDir()
	toy := filepath.Join(fixtures, "torch/toy_qins_log.pt")
	// 100 MiB of tcmalloc sample lines, gzipped.
	var plain bytes.Buffer
	plain.WriteString("heap profile: 1: 8 [ 1: 8] @ heap_v2/524288\n")
	chunk := bytes.Repeat([]byte("1: 8 [1: 8] @ 0x10\n"), 1<<14)
	for plain.Len() < 100<<20 {
		plain.Write(chunk)
	}
	plain.WriteString("\nMAPPED_LIBRARIES:\n")
	lines := filepath.Join(dir, "lines.heap.gz")
	writeGzip(t, lines, plain.Bytes())
	plain = bytes.Buffer{}
	// A profile.proto of 10 M one-location samples, gzipped.
	ld := func(field int, payload []byte) []byte {
		b := binary.AppendUvarint(nil, uint64(field<<3|2))
		b = binary.AppendUvarint(b, uint64(len(payload)))
		return append(b, payload...)
	}
	var proto bytes.Buffer
	proto.Write(ld(1, []byte{0x08, 1, 0x10, 2}))
	proto.Write(ld(4, []byte{0x08, 1, 0x10, 0x10}))
	sample := ld(2, append(ld(1, []byte{1}), ld(2, []byte{8})...))
	proto.Write(bytes.Repeat(sample, 10_000_000))
	for _, s := range []string{"", "inuse_space", "bytes"} {
		proto.Write(ld(6, []byte(s)))
	}
	samples := filepath.Join(dir, "samples.pb.gz")
	writeGzip(t, samples, proto.Bytes())
	proto = bytes.Buffer{}
	// A safetensors file with a 1 MB name and 999 small tensors.
	header := map[string]any{strings.Repeat("n", 1<<20): map[string]any{"dtype": "F32", "shape": []int{1}, "data_offsets": []int{0, 4}}}
	for i := range 999 {
		header[fmt.Sprintf("t%d.weight", i)] = map[string]any{"dtype": "F32", "shape": []int{1}, "data_offsets": []int{4 * (i + 1), 4 * (i + 2)}}
	}
	h, _ := json.Marshal(header)
	st := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	st = append(append(st, h...), make([]byte, 4000)...)
	longName := filepath.Join(dir, "long.safetensors")
	if err := os.WriteFile(longName, st, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"crosscheck", toy, "--heap", lines}, exitBadInput, "decompresses to more than"},
		{[]string{"crosscheck", toy, "--heap", samples}, exitBadInput, "decompresses to more than"},
		{[]string{"audit", "--by", "tensor", longName}, exitOK, ""},
		{[]string{"audit", "--by", "tensor", "--format", "markdown", longName}, exitOK, ""},
	} {
		stderr, code := runLimitedChild(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "out of memory") {
			t.Errorf("%v under ulimit -v %d KiB: exit %d, stderr %.300q; want exit %d and %q", c.args, childLimitKiB, code, stderr, c.code, c.want)
		}
	}
}

func writeGzip(t *testing.T, path string, data []byte) {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
