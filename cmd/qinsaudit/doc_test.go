package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/internal/schematest"
)

var update = flag.Bool("update", false, "rewrite golden files and the outputs of the examples in docs/")

// example is one "$ qinsaudit ..." command in a ```console block of a doc,
// with the output the doc shows for it.
type example struct {
	file       string
	line       int
	args       []string
	want       string
	start, end int // byte range of the output in the file
}

var consoleBlock = regexp.MustCompile("(?s)```console\n(.*?)```")

// docExamples finds the examples in a Markdown file. Each starts with a
// "$ qinsaudit" or "$ go run ./cmd/qinsaudit" line; its output runs to the next "$ " line or the end of
// the block. A last output line "(exit N)" gives the expected exit code.
func docExamples(t *testing.T, path string) (data []byte, exs []example) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range consoleBlock.FindAllSubmatchIndex(data, -1) {
		body, pos := data[m[2]:m[3]], m[2]
		lines := strings.SplitAfter(string(body), "\n")
		var cur *example
		for _, l := range lines {
			if strings.HasPrefix(l, "$ ") {
				if cur != nil {
					cur.end = pos
					exs = append(exs, *cur)
				}
				cur = nil
				for _, prefix := range []string{"$ qinsaudit ", "$ go run ./cmd/qinsaudit "} {
					if strings.HasPrefix(l, prefix) {
						cur = &example{file: path, line: 1 + bytes.Count(data[:pos], []byte("\n")),
							args: strings.Fields(strings.TrimPrefix(l, prefix)), start: pos + len(l)}
					}
				}
			} else if cur != nil {
				cur.want += l
			}
			pos += len(l)
		}
		if cur != nil {
			cur.end = pos
			exs = append(exs, *cur)
		}
	}
	return data, exs
}

var exitLine = regexp.MustCompile(`\(exit (\d+)\)\n$`)

// TestDocs runs every example in docs/*.md and README.md from the
// repository root and compares its output (stdout, then stderr) and exit
// code with what the doc shows.
func TestDocs(t *testing.T) {
	t.Chdir("../..")
	docs, _ := filepath.Glob("docs/*.md")
	docs = append(docs, "README.md")
	n := 0
	for _, doc := range docs {
		data, exs := docExamples(t, doc)
		var out bytes.Buffer
		last := 0
		for _, ex := range exs {
			n++
			want, wantCode := ex.want, 0
			if m := exitLine.FindStringSubmatch(want); m != nil {
				wantCode, _ = strconv.Atoi(m[1])
				want = want[:len(want)-len(m[0])]
			}
			var stdout, stderr bytes.Buffer
			code := run(ex.args, &stdout, &stderr)
			if bytes.HasPrefix(stdout.Bytes(), []byte("{")) {
				schematest.Validate(t, stdout.Bytes())
			}
			got := stdout.String() + stderr.String()
			gotFull := got
			if code != 0 {
				gotFull += "(exit " + strconv.Itoa(code) + ")\n"
			}
			if *update {
				out.Write(data[last:ex.start])
				out.WriteString(gotFull)
				last = ex.end
				continue
			}
			if got != want || code != wantCode {
				t.Errorf("%s:%d: qinsaudit %s\nexit %d (doc says %d)\n--- got\n%s--- doc\n%s", ex.file, ex.line,
					strings.Join(ex.args, " "), code, wantCode, got, want)
			}
		}
		if *update && len(exs) > 0 {
			out.Write(data[last:])
			if err := os.WriteFile(doc, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no examples found in docs/*.md or README.md")
	}
}
