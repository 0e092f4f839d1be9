package report

import (
	"bytes"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	gojson "github.com/goccy/go-json"
)

// decoders reads data as ParseJSON did before the fast reader: go-json,
// and encoding/json, into the document ParseJSON reads.
func decoders(t *testing.T, data []byte) (goRep *Report, goSchema *int, goErr error, stdRep *Report, stdSchema *int, stdErr error) {
	t.Helper()
	type doc struct {
		*Report
		SchemaVersion *int   `json:"schema_version"`
		Kind          string `json:"kind"`
	}
	g := doc{Report: new(Report)}
	goErr = gojson.Unmarshal(data, &g)
	s := doc{Report: new(Report)}
	stdErr = json.Unmarshal(data, &s)
	return g.Report, g.SchemaVersion, goErr, s.Report, s.SchemaVersion, stdErr
}

// fastAgrees checks that when the fast reader reads data, it reads what
// go-json and encoding/json read, and reports whether it read it.
func fastAgrees(t *testing.T, what string, data []byte) bool {
	t.Helper()
	rep, schema, ok := readFast(string(data))
	if !ok {
		return false
	}
	goRep, goSchema, goErr, stdRep, stdSchema, stdErr := decoders(t, data)
	if goErr != nil || stdErr != nil {
		t.Fatalf("%s: the fast reader read what go-json (%v) or encoding/json (%v) refuse:\n%.300s", what, goErr, stdErr, data)
	}
	if !reflect.DeepEqual(rep, goRep) || !reflect.DeepEqual(schema, goSchema) {
		t.Fatalf("%s: the fast reader reads\n%+v\ngo-json\n%+v\nfrom\n%.300s", what, rep, goRep, data)
	}
	if !reflect.DeepEqual(rep, stdRep) || !reflect.DeepEqual(schema, stdSchema) {
		t.Fatalf("%s: the fast reader reads\n%+v\nencoding/json\n%+v\nfrom\n%.300s", what, rep, stdRep, data)
	}
	return true
}

// TestFastReaderAgrees: every report WriteJSON writes (fixtures, a large
// one, random ones) is read by the fast reader, as go-json and
// encoding/json read it; so are the same documents compact or indented
// otherwise.
func TestFastReaderAgrees(t *testing.T) {
	var docs [][]byte
	s := sample(t)
	s.Phases = NewPhases(samplePhases())
	s.Comparisons = NewComparisons(sampleComparisons())
	s.Gate = &Gate{Passed: true, Against: "a.json", Outcomes: []Outcome{{Check: "max_growth", Subject: "total", Limit: 1e-7, Actual: 2.5e21, Unit: "percent", Status: StatusPass, Message: "<ok>"}}}
	s.Remote = &Remote{Sources: []RemoteSource{{Source: "hf://a/b", Endpoint: "https://hf", Revision: "main"}}, WallMillis: 9}
	reps := []*Report{sample(t), s, largeReport(t, 2_000, 1)}
	r := rand.New(rand.NewPCG(7, 11))
	for range 2000 {
		if rep := randomReport(r); !reportRefused(rep) {
			reps = append(reps, rep)
		}
	}
	for _, rep := range reps {
		var b bytes.Buffer
		if err := WriteJSON(&b, rep); err != nil {
			t.Fatal(err)
		}
		compact, _ := json.Marshal(rep)
		indented, _ := json.MarshalIndent(rep, "\t", "\t")
		docs = append(docs, b.Bytes(), compact, indented)
	}
	for i, d := range docs {
		if !fastAgrees(t, "written report", d) {
			t.Fatalf("document %d, written by qinsaudit, is not read by the fast reader:\n%.500s", i, d)
		}
	}
}

// TestFastReaderGivesUp: documents the fast reader must not read as it
// reads its own (a key spelled otherwise, a field twice, null for a
// string, a float for an integer, surrogates, invalid UTF-8, bad JSON)
// are left to go-json and encoding/json, and ParseJSON says of them what
// it said before. Those it does read, it reads as they do.
func TestFastReaderGivesUp(t *testing.T) {
	head := `{"schema_version": 1, "tool": "qinsaudit", "baseline": "float32", `
	cases := []struct {
		doc  string
		fast bool // the fast reader reads it
	}{
		{head + `"tensors": [{"name": "a"}]}`, true},
		{head + `"tensors": [{"Name": "a"}]}`, false},
		{head + `"tensors": [{"name": "a", "name": "b"}]}`, false},
		{head + `"tensors": [{"name": null}]}`, false},
		{head + `"tensors": null, "findings": null, "gate": null, "remote": null}`, true},
		{head + `"tensors": [{"shape": null, "shares_storage_with": null}]}`, true},
		{head + `"tensors": [{"numel": 1.0}]}`, false},
		{head + `"tensors": [{"numel": 1e3}]}`, false},
		{head + `"tensors": [{"numel": 9223372036854775807}]}`, true},
		{head + `"tensors": [{"numel": 9223372036854775808}]}`, false},
		{head + `"tensors": [{"numel": -9223372036854775808}]}`, true},
		{head + `"tensors": [{"numel": -0}]}`, true},
		{head + `"tensors": [{"numel": 01}]}`, false},
		{head + `"tensors": [{"numel": +1}]}`, false},
		{head + `"tensors": [{"element_size": 1e400}]}`, false},
		{head + `"tensors": [{"element_size": -1.5E-3}]}`, true},
		{head + `"tensors": [{"element_size": 1.}]}`, false},
		{head + `"tensors": [{"name": "\u00e9\n\t\"\\\/\b\f\r\u2028<"}]}`, true},
		{head + `"tensors": [{"name": "\ud834\udd1e"}]}`, false},
		{head + `"tensors": [{"name": "\ud834"}]}`, false},
		{head + `"tensors": [{"name": "\x"}]}`, false},
		{head + `"tensors": [{"name": "\u12"}]}`, false},
		{head + "\"tensors\": [{\"name\": \"\xff\"}]}", false},
		{head + "\"tensors\": [{\"name\": \"a\x01\"}]}", false},
		{head + "\"tensors\": [{\"name\": \"\xef\xbf\xbd\xf0\x9d\x84\x9e\"}]}", true},
		{head + `"tensors": [{"tied": true}, {"tied": false}]}`, true},
		{head + `"tensors": [{"tied": 1}]}`, false},
		{head + `"tensors": [{"name": "a"},]}`, false},
		{head + `"tensors": [{"name": "a"}]} x`, false},
		{head + `"tensors": [{"name": "a"}]`, false},
		{head + `"kind": "diff"}`, false},
		{head + `"extra": 1}`, false},
		{head + `"phases": [{"phase": "p", "by_role": {"a": 1, "b": 2}, "verdict": "consistent"}]}`, true},
		{head + `"phases": [{"by_role": {"a": 1, "a": 2}}]}`, false},
		{head + `"phases": [{"by_role": {}}]}`, true},
		{head + `"phases": [{"verdict": "nope"}]}`, false},
		{head + `"modules": [{"module": ""}, {"module": null}, {"module": "a"}]}`, true},
		{`{"schema_version": 1.5, "tool": "qinsaudit"}`, false},
		{`{"schema_version": 2, "tool": "qinsaudit"}`, true},
		{`{"tool": "qinsaudit"}`, true},
		{`  {}  `, true},
		{`[]`, false},
		{``, false},
	}
	for _, c := range cases {
		data := []byte(c.doc)
		if got := fastAgrees(t, c.doc, data); got != c.fast {
			t.Errorf("%s: fast reader read it: %v, want %v", c.doc, got, c.fast)
		}
	}
}

// TestParseJSONErrorsUnchanged: a report the fast reader gives up on
// still gets encoding/json's message with its line.
func TestParseJSONErrorsUnchanged(t *testing.T) {
	data := []byte("{\"schema_version\": 1, \"tool\": \"qinsaudit\",\n\"tensors\": [{\"numel\": \"x\"}]}")
	_, err := ParseJSON(data)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "numel") {
		t.Fatalf("error %v", err)
	}
}

// TestValidateFastSums: on reports with one figure, key or group changed,
// Validate says what it says with every group list summed by key.
func TestValidateFastSums(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	base := largeReport(t, 600, 1)
	refused := 0
	for i := range 400 {
		var b bytes.Buffer
		if err := WriteJSON(&b, base); err != nil {
			t.Fatal(err)
		}
		rep, err := ParseJSON(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		lists := []*[]Group{&rep.Roles, &rep.Modules, &rep.Layers, &rep.DTypes}
		gs := lists[r.IntN(len(lists))]
		n := len(*gs)
		switch i % 8 {
		case 0:
			(*gs)[r.IntN(n)].StoredBytes++
		case 1:
			(*gs)[r.IntN(n)].TheoreticalBytes--
		case 2: // a group listed twice
			*gs = append(*gs, (*gs)[r.IntN(n)])
		case 3: // a group missing
			k := r.IntN(n)
			*gs = append((*gs)[:k:k], (*gs)[k+1:]...)
		case 4: // groups out of order
			a, c := r.IntN(n), r.IntN(n)
			(*gs)[a], (*gs)[c] = (*gs)[c], (*gs)[a]
		case 5: // a tensor moved to another module
			rep.Tensors[r.IntN(len(rep.Tensors))].Module = rep.Tensors[r.IntN(len(rep.Tensors))].Module
		case 6: // a tensor of a layer no group lists
			rep.Tensors[r.IntN(len(rep.Tensors))].Layer = ""
		case 7: // an empty group
			m := "empty"
			*gs = append(*gs, Group{Module: &m, Role: "", Layer: ""})
			if gs != &rep.Modules {
				(*gs)[len(*gs)-1] = Group{Role: "zero", Layer: "zero", DType: "zero"}
			}
		}
		fastErr := rep.Validate()
		sumsFast = false
		slowErr := rep.Validate()
		sumsFast = true
		if (fastErr == nil) != (slowErr == nil) || fastErr != nil && fastErr.Error() != slowErr.Error() {
			t.Fatalf("mutation %d: %v, with every list summed by key %v", i%8, fastErr, slowErr)
		}
		if fastErr != nil {
			refused++
		}
	}
	if refused < 250 {
		t.Fatalf("only %d of 400 changed reports refused", refused)
	}
	if err := base.Validate(); err != nil {
		t.Fatal(err)
	}
}

// FuzzFastReader: go test ./report -fuzz=FuzzFastReader. Whatever the
// fast reader reads, it reads as go-json and encoding/json do.
func FuzzFastReader(f *testing.F) {
	for _, p := range []string{"testdata/sample.json", "testdata/sample_comparisons.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"schema_version": 1, "tool": "qinsaudit", "tensors": [{"name": "a\u00e9\"", "shape": [1, 20], "numel": 123456789012345678, "element_size": 1e-7}]}`))
	f.Fuzz(func(t *testing.T, data []byte) { fastAgrees(t, "fuzzed document", data) })
}

// TestSpecial8: the first byte special8 marks is the first byte plainIn
// does not mark, for every byte value at every place among plain ones.
func TestSpecial8(t *testing.T) {
	for c := range 256 {
		for at := range 8 {
			for _, fill := range []byte{'a', ' ', '~', '!', '#', '[', ']'} {
				b := bytes.Repeat([]byte{fill}, 8)
				b[at] = byte(c)
				if at < 7 {
					b[7] = '"' // a later special byte must not hide it
				}
				m := special8(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
				want := 8
				for i, x := range b {
					if !plainIn[x] {
						want = i
						break
					}
				}
				got := 8
				if m != 0 {
					got = bits.TrailingZeros64(m) >> 3
				}
				if got != want {
					t.Fatalf("%q: first special byte %d, want %d", b, got, want)
				}
			}
		}
	}
}

// TestFastReaderSplit: a tensors array read in two halves at once reads
// as it does in one, on written reports of every size from two tensors
// and on documents whose lines mislead the split; where the halves cannot
// be read, the whole is, or the document is refused as it would be.
func TestFastReaderSplit(t *testing.T) {
	defer func(n int) { splitTensors = n }(splitTensors)
	read := func(doc string, split int) (*Report, bool) {
		splitTensors = split
		rep, _, ok := readFast(doc)
		return rep, ok
	}
	var docs []string
	for n := 2; n < 40; n++ {
		var b bytes.Buffer
		if err := WriteJSON(&b, largeReport(t, n, int64(n%3))); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b.String())
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		if rep := randomReport(r); !reportRefused(rep) && len(rep.Tensors) >= 2 {
			var b bytes.Buffer
			if err := WriteJSON(&b, rep); err != nil {
				t.Fatal(err)
			}
			docs = append(docs, b.String())
		}
	}
	// Hand-made: names long enough for the lines to count (a tensor is
	// at least 200 bytes).
	head := `{"schema_version": 1, "tool": "qinsaudit", "baseline": "float32", "tensors": [`
	a, b, c := `"`+strings.Repeat("a", 400)+`"`, `"`+strings.Repeat("b", 400)+`"`, `"`+strings.Repeat("c", 400)+`"`
	crafted := []string{
		head + `{"name": ` + a + `},` + tensorLine + b + `},` + tensorLine + c + `, "shape": [1, 2]}]}`,
		head + `{"name": ` + a + `}  ,  ` + tensorLine + b + `}` + tensorLine[:1] + `, {"name": ` + c + `}]}`,
		head + `{"name": ` + a + `}, {"name": ` + a + `}, {"name": ` + a + `},` + tensorLine + b + `}, {"name": ` + c + `}]}`,
		head + `{"name": ` + a + `, "shares_storage_with": ["x",` + tensorLine + b + `}]}]}`,
		head + `{"name": ` + a + `}` + tensorLine + b + `}]}`,
		head + `{"name": ` + a + `}], "findings": [` + tensorLine + b + `},` + tensorLine + c + `}]}`,
		head + `{"name": ` + a + `},` + tensorLine + b + `},` + tensorLine + c + `},]}`,
		head + `{"name": ` + a + `},` + tensorLine + b + `},` + tensorLine + c + `}`,
		// More tensor lines before the split than the bytes allow for
		// (each tensor at least 200 bytes): read whole.
		head + strings.Repeat(`{"name": "s"},`+tensorLine[:len(tensorLine)-len(`{"name": `)], 20) + `{"name": "` + strings.Repeat("a", 800) + `"}]}`,
	}
	docs = append(docs, crafted...)
	for i, doc := range docs {
		whole, wholeOK := read(doc, 1<<30)
		halves, halvesOK := read(doc, 2)
		if wholeOK != halvesOK || !reflect.DeepEqual(whole, halves) {
			t.Fatalf("document %d: read in halves (%v) differs from read whole (%v):\n%.400s", i, halvesOK, wholeOK, doc)
		}
		if i < len(docs)-len(crafted)+3 && !wholeOK {
			t.Fatalf("document %d, written by qinsaudit, is not read:\n%.400s", i, doc)
		}
	}
}

// FuzzFastReaderSplit: a document reads the same with its tensors array
// split in two as read in one.
func FuzzFastReaderSplit(f *testing.F) {
	var b bytes.Buffer
	if err := WriteJSON(&b, largeReport(f, 6, 1)); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	long := `"` + strings.Repeat("x", 300) + `"`
	f.Add([]byte(`{"tensors": [{"name": ` + long + `},` + tensorLine + long + `}, {"name": ` + long + `},` + tensorLine + long + `}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer func(n int) { splitTensors = n }(splitTensors)
		splitTensors = 1 << 30
		whole, _, wholeOK := readFast(string(data))
		splitTensors = 2
		halves, _, halvesOK := readFast(string(data))
		if wholeOK != halvesOK || !reflect.DeepEqual(whole, halves) {
			t.Fatalf("read in halves (%v) differs from read whole (%v)", halvesOK, wholeOK)
		}
	})
}
