package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/racetest"
)

// hostileNames are tensor names made to hurt a reader: a terminal escape, a
// forged line, Markdown table syntax, a code span, a bidi override, a
// spreadsheet formula, a link and an HTML tag.
var hostileNames = []string{
	"evil\x1b[2J\x1b[31mred.weight",
	"line\r\nforged | row | x.weight",
	"code`x`|col.weight",
	"bidi\u202egnp.exe.weight",
	"=HYPERLINK(\"http://x\").weight",
	"[link](http://x)<b>bold</b>.weight",
	"c1\u009bcontrol.weight",
}

func hostileReport(t *testing.T, names ...string) *Report {
	t.Helper()
	m := &accounting.Model{Files: []accounting.File{{Path: "m.safetensors", Format: "safetensors", SizeBytes: int64(4 * len(names))}}}
	for i, n := range names {
		m.Tensors = append(m.Tensors, accounting.Tensor{Name: n, DType: "float32", Shape: []int64{1}, Storage: fmt.Sprint(i), StorageBytes: 4})
	}
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return New(res)
}

// TestNamesCannotInject: in text and Markdown no control character, bidi
// override or raw newline from a name reaches the output, and in Markdown
// every table line has the header's number of cells; in CSV every row
// parses (RFC 4180) to the header's width and no cell starts a formula.
func TestNamesCannotInject(t *testing.T) {
	rep := hostileReport(t, hostileNames...)
	opts := TextOptions{By: "tensor"}
	for _, md := range []bool{false, true} {
		var b bytes.Buffer
		if err := write(&b, rep, opts, md); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, bad := range []string{"\x1b", "\r", "\u202e", "\u009b", "\nforged"} {
			if strings.Contains(out, bad) {
				t.Errorf("markdown=%v: output holds %q:\n%s", md, bad, out)
			}
		}
		if !strings.Contains(out, `\x1b[2J`) || !strings.Contains(out, `\u202e`) {
			t.Errorf("markdown=%v: escapes not shown:\n%s", md, out)
		}
		if md {
			checkMarkdownCells(t, out)
			for _, bad := range []string{"<b>", "](http", "`x`", "forged | row"} {
				if strings.Contains(out, bad) {
					t.Errorf("markdown: %q reaches the output unescaped", bad)
				}
			}
		}
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, rep, opts); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	for i, r := range rows[1:] {
		if len(r) != len(rows[0]) {
			t.Errorf("row %d has %d cells, header %d", i, len(r), len(rows[0]))
		}
		if c := r[0]; c != "" && strings.ContainsRune("=+-@", rune(c[0])) || strings.ContainsAny(c, "\x1b\r\n") {
			t.Errorf("row %d: cell %q starts a formula or holds a control character", i, c)
		}
	}
	if rows[5][0] != `'=HYPERLINK("http://x").weight` {
		t.Errorf("formula cell = %q, want it behind an apostrophe, whole", rows[5][0])
	}
}

// checkMarkdownCells: every line of every Markdown table splits on
// unescaped '|' into as many cells as its header.
func checkMarkdownCells(t *testing.T, out string) {
	t.Helper()
	want := -1
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "|") {
			want = -1
			continue
		}
		n := 0
		for i := 0; i < len(l); i++ {
			switch l[i] {
			case '\\':
				i++
			case '|':
				n++
			}
		}
		if want < 0 {
			want = n
		} else if n != want {
			t.Errorf("markdown line has %d separators, its table %d: %q", n, want, l)
		}
	}
}

// TestLongNameClipped: a 100 KB name is clipped in tables (full in JSON
// and CSV), so 999 rows beside it stay narrow: the output and the memory
// of rendering it are a small multiple of the table's own rows.
func TestLongNameClipped(t *testing.T) {
	racetest.SkipAllocs(t)
	names := []string{strings.Repeat("a", 100_000)}
	for i := range 999 {
		names = append(names, fmt.Sprintf("t%d.weight", i))
	}
	rep := hostileReport(t, names...)
	for _, md := range []bool{false, true} {
		var b bytes.Buffer
		alloc := allocated(func() {
			if err := write(&b, rep, TextOptions{By: "tensor"}, md); err != nil {
				t.Fatal(err)
			}
		})
		if b.Len() > 1<<20 {
			t.Errorf("markdown=%v: %d bytes of output for 1,000 tensors, want under 1 MiB", md, b.Len())
		}
		if alloc > 64<<20 {
			t.Errorf("markdown=%v: rendering allocated %d MiB, want under 64", md, alloc>>20)
		}
		if !strings.Contains(b.String(), "…(+") {
			t.Errorf("markdown=%v: the long name is not marked as clipped", md)
		}
	}
	var j bytes.Buffer
	if err := WriteJSON(&j, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(j.String(), names[0]) {
		t.Error("the JSON report does not hold the name whole")
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestReadJSONRefusesContradictions: a saved report with counts out of
// range, or whose figures do not add up, is refused naming the field; a
// report qinsaudit wrote is read back.
func TestReadJSONRefusesContradictions(t *testing.T) {
	base := sample(t)
	var b bytes.Buffer
	if err := WriteJSON(&b, base); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadJSON(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatalf("a written report is refused: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(r *Report)
		want string
	}{
		{"negative stored", func(r *Report) { r.Tensors[0].StoredBytes = -4096 }, "tensors[0] (embed.weight): stored_bytes -4096 out of range"},
		{"MaxInt64 stored", func(r *Report) { r.Tensors[0].StoredBytes = math.MaxInt64 }, "stored_bytes 9223372036854775807 out of range"},
		{"negative file size", func(r *Report) { r.Files[0].SizeBytes = -1 }, "files[0] (model.pt): size_bytes -1 out of range"},
		{"total not the sum", func(r *Report) { r.Totals.StoredBytes += 1 << 40 }, "totals:"},
		{"role not its tensors", func(r *Report) { r.Roles[0].StoredBytes++ }, "roles[0] (encoded_linear): stored_bytes"},
		{"module not its tensors", func(r *Report) { r.Modules[0].Params += 7 }, "modules[0]"},
		{"file not its tensors", func(r *Report) { r.Files[0].StoredBytes++ }, "files[0] (model.pt)"},
		{"overhead", func(r *Report) { r.Files[0].OverheadBytes = 0 }, "overhead_bytes 0 is not"},
		{"wrapping sum", func(r *Report) {
			for i := range r.Tensors {
				r.Tensors[i].StoredBytes = 1 << 62
			}
		}, "sum to more than 2^62"},
		{"negative dimension", func(r *Report) { r.Tensors[1].Shape = []int64{-1} }, "negative"},
		{"group twice", func(r *Report) { r.DTypes = append(r.DTypes, r.DTypes[0]) }, "listed twice"},
		{"finding bytes", func(r *Report) { r.Findings[0].Bytes = -1 }, "findings[0]: bytes -1 out of range"},
	} {
		var r Report
		if err := json.Unmarshal(b.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		c.edit(&r)
		data, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ReadJSON(bytes.NewReader(data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ReadJSON = %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// TestEmptyTensorName: torch.save(t) of a bare tensor names it "" (the
// whole pickle); the tensor table shows "(top level)", as the module
// table does, not a blank cell, and the JSON keeps the name as it is.
func TestEmptyTensorName(t *testing.T) {
	rep := hostileReport(t, "", "w")
	for _, md := range []bool{false, true} {
		var b bytes.Buffer
		if err := write(&b, rep, TextOptions{By: "tensor"}, md); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), "(top level)") {
			t.Errorf("markdown=%v: no (top level) row:\n%s", md, b.String())
		}
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"name": ""`) && !strings.Contains(b.String(), `"name":""`) {
		t.Errorf("JSON does not keep the empty name:\n%s", b.String())
	}
}
