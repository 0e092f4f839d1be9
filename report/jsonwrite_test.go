package report

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/loaders"
)

// agree fails unless the appender writes v byte for byte as the reference
// (json.Marshal, then layout) does, or both refuse it.
func agree(t *testing.T, what string, v any) {
	t.Helper()
	var got bytes.Buffer
	var err error
	switch v := v.(type) {
	case *Report:
		err = WriteJSON(&got, v)
	case *Diff:
		err = WriteDiffJSON(&got, v)
	}
	want, werr := marshalLayout(v)
	if (err != nil) != (werr != nil) || err != nil && err.Error() != werr.Error() {
		t.Fatalf("%s: error %v, reference %v", what, err, werr)
	}
	if err == nil && !bytes.Equal(got.Bytes(), want) {
		g, w := got.Bytes(), want
		i := 0
		for i < min(len(g), len(w)) && g[i] == w[i] {
			i++
		}
		t.Fatalf("%s: differs from the reference at byte %d:\n%q\nwant\n%q", what, i, g[max(0, i-80):min(len(g), i+80)], w[max(0, i-80):min(len(w), i+80)])
	}
}

// TestJSONWriterAgrees holds the hand-written JSON appender to the
// reference writer on the report of every model fixture (and of the
// real-world files, when present), the saved reports and diffs in
// testdata, a large report, and a diff of every pair of fixtures' reports.
func TestJSONWriterAgrees(t *testing.T) {
	var reps []*Report
	var names []string
	for _, root := range []string{"../fixtures", "../../shared/realworld"} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".md") {
				return nil
			}
			m, err := loaders.Open(path)
			if err != nil {
				return nil
			}
			res, err := accounting.Audit(m, accounting.Options{})
			if err != nil {
				return nil
			}
			reps = append(reps, New(res))
			names = append(names, path)
			return nil
		})
	}
	if len(reps) < 20 {
		t.Fatalf("only %d fixtures audited", len(reps))
	}
	saved, _ := filepath.Glob("testdata/*.json")
	saved = append(saved, "../cmd/qinsaudit/testdata/compat/v1_toy_fp32.json")
	for _, p := range saved {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(`"kind": "diff"`)) {
			var d Diff
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			agree(t, p, &d)
			continue
		}
		var r Report
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatal(err)
		}
		reps = append(reps, &r)
		names = append(names, p)
	}
	s := sample(t)
	s.Phases = NewPhases(samplePhases())
	s.Comparisons = NewComparisons(sampleComparisons())
	s.Gate = &Gate{Passed: false, Config: "q.yaml", Outcomes: []Outcome{{Check: "min_ratio", Subject: "total", Limit: 3.5, Actual: 1e-9, Unit: "ratio", Status: StatusFail, Message: "<&>"},
		{Check: "x", Waiver: "w", Status: StatusWaived, Limit: 1e21}}}
	s.Remote = &Remote{Sources: []RemoteSource{{Source: "hf://a/b", Repo: "a/b", Commit: "c"}, {Source: "https://x"}}, Requests: 3, BytesReceived: 1 << 40}
	reps = append(reps, s, largeReport(t, 3_000, 1))
	names = append(names, "sample with every block", "large")
	for i, r := range reps {
		agree(t, names[i], r)
	}
	for i, a := range reps {
		b := reps[(i+1)%len(reps)]
		for _, by := range []DiffBy{DiffByRole, DiffByModule, DiffByTensor} {
			agree(t, "diff "+names[i]+" by "+string(by), NewDiff(a, b, by))
		}
	}
}

// randomString draws a string of any bytes: ASCII controls, the HTML
// characters, quotes and backslashes, valid multi-byte runes, U+2028 and
// U+2029, and invalid UTF-8.
func randomString(r *rand.Rand) string {
	pieces := []string{"\u2028", "\u2029", "é", "€", "𝄞", "\xff", "\xc3", "\xed\xa0\x80", "<", ">", "&", `"`, `\`, "\x7f", "\x00", "\b", "\f", "\n", "\r", "\t"}
	var b strings.Builder
	for range r.IntN(12) {
		switch r.IntN(3) {
		case 0:
			b.WriteByte(byte(r.IntN(256)))
		case 1:
			b.WriteString(pieces[r.IntN(len(pieces))])
		default:
			b.WriteByte(byte('a' + r.IntN(26)))
		}
	}
	return b.String()
}

// randomFloat draws floats encoding/json formats differently: around the
// exponent-form limits, subnormals, extremes, negative zero, integers,
// any bit pattern (NaN and infinities among them, which both refuse).
func randomFloat(r *rand.Rand) float64 {
	special := []float64{0, math.Copysign(0, -1), 1e-6, 9.999999999999999e-7, 1e21, 9.999999999999999e20, 1e-7, 1e-10, 1e-100,
		5e-324, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1, 0.1, 2.5, 123456789, 1e20, -1e-7, 3.2e-5}
	switch r.IntN(4) {
	case 0:
		return special[r.IntN(len(special))]
	case 1:
		return math.Float64frombits(r.Uint64())
	case 2:
		return float64(r.Int64N(1<<53)) / float64(int64(1)<<r.IntN(60))
	}
	return r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30))
}

func randomStrings(r *rand.Rand) []string {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+r.IntN(3))
	for i := range out {
		out[i] = randomString(r)
	}
	return out
}

func randomGroups(r *rand.Rand) []Group {
	if r.IntN(5) == 0 {
		return nil
	}
	out := make([]Group, r.IntN(4))
	for i := range out {
		out[i] = randomGroup(r)
	}
	return out
}

func randomGroup(r *rand.Rand) Group {
	g := Group{Tensors: r.Int64(), Params: -r.Int64(), BaselineBytes: r.Int64N(10), TheoreticalBytes: 0, StoredBytes: math.MaxInt64,
		Ratio: randomFloat(r), BitsPerWeight: randomFloat(r)}
	switch r.IntN(6) {
	case 0:
		g.Role = randomString(r)
	case 1:
		g.Layer = randomString(r)
	case 2:
		m := randomString(r)
		g.Module = &m
	case 3:
		g.DType = randomString(r)
	case 4:
		g.Role, g.Layer, g.DType = randomString(r), randomString(r), randomString(r)
	}
	return g
}

// randomReport fills every field of a report, each optional one present
// or not, with values chosen to reach every branch of the appender.
func randomReport(r *rand.Rand) *Report {
	rep := &Report{SchemaVersion: r.IntN(3), Tool: randomString(r), Baseline: randomString(r),
		Roles: randomGroups(r), Totals: randomGroup(r), Layers: randomGroups(r), Modules: randomGroups(r), DTypes: randomGroups(r)}
	if r.IntN(2) == 0 {
		rep.ToolVersion = randomString(r)
	}
	if r.IntN(5) > 0 {
		rep.Files = []File{}
		for range r.IntN(3) {
			f := File{Path: randomString(r), Format: randomString(r), SizeBytes: r.Int64(), Tensors: -1, StoredBytes: 7, OverheadBytes: math.MinInt64}
			if r.IntN(2) == 0 {
				f.Label = randomString(r)
			}
			rep.Files = append(rep.Files, f)
		}
	}
	if r.IntN(2) == 0 {
		rep.SkippedFiles = make([]SkippedFile, r.IntN(3))
		for i := range rep.SkippedFiles {
			rep.SkippedFiles[i] = SkippedFile{Path: randomString(r), SizeBytes: r.Int64(), Reason: randomString(r)}
		}
	}
	if r.IntN(5) > 0 {
		rep.Tensors = []Tensor{}
		for range r.IntN(5) {
			t := Tensor{Name: randomString(r), File: randomString(r), DType: randomString(r), Numel: r.Int64(), ElementSize: randomFloat(r),
				Role: randomString(r), Part: randomString(r), Module: randomString(r), Layer: randomString(r), Scheme: randomString(r),
				Params: r.Int64(), TheoreticalBytes: -r.Int64(), StoredBytes: r.Int64N(100), BaselineBytes: 0, DeadBytes: 1,
				SharesStorageWith: randomStrings(r), Tied: r.IntN(2) == 0}
			switch r.IntN(3) {
			case 0:
				t.Shape = []int64{}
			case 1:
				t.Shape = []int64{r.Int64(), -1, 0, math.MinInt64}[:r.IntN(5)]
			}
			rep.Tensors = append(rep.Tensors, t)
		}
	}
	if r.IntN(5) > 0 {
		rep.Findings = []Finding{}
		for range r.IntN(3) {
			rep.Findings = append(rep.Findings, Finding{Kind: randomString(r), Severity: randomString(r), Module: randomString(r),
				Tensors: randomStrings(r), Bytes: r.Int64(), Message: randomString(r)})
		}
	}
	// Verdicts 0 to 11: 0 is omitted from a phase and refused in a
	// comparison; 10 and 11 have no name.
	verdict := func() accounting.Verdict {
		if r.IntN(8) == 0 {
			return accounting.Verdict(r.IntN(12))
		}
		return accounting.Verdict(1 + r.IntN(9))
	}
	if r.IntN(3) == 0 {
		rep.Phases = make([]Phase, r.IntN(3))
		for i := range rep.Phases {
			p := Phase{Phase: randomString(r), InUseBytes: r.Int64(), ExpectedBytes: r.Int64()}
			if r.IntN(2) == 0 {
				p.Verdict = verdict()
			}
			if r.IntN(4) > 0 {
				p.ByRole = map[string]int64{}
				for range r.IntN(4) {
					p.ByRole[randomString(r)] = r.Int64()
				}
			}
			rep.Phases[i] = p
		}
	}
	if r.IntN(3) == 0 {
		rep.Comparisons = make([]Comparison, r.IntN(3))
		for i := range rep.Comparisons {
			rep.Comparisons[i] = Comparison{Subject: randomString(r), MeasuredBytes: r.Int64(), ExpectedBytes: r.Int64(),
				ToleranceBytes: r.Int64(), Verdict: verdict(), Message: randomString(r)}
		}
	}
	if r.IntN(3) == 0 {
		g := &Gate{Passed: r.IntN(2) == 0}
		if r.IntN(2) == 0 {
			g.Config, g.Against = randomString(r), randomString(r)
		}
		if r.IntN(4) > 0 {
			g.Outcomes = []Outcome{}
			for range r.IntN(3) {
				o := Outcome{Check: randomString(r), Subject: randomString(r), Limit: randomFloat(r), Actual: randomFloat(r),
					Unit: randomString(r), Status: Status(randomString(r)), Message: randomString(r)}
				if r.IntN(2) == 0 {
					o.Waiver = randomString(r)
				}
				g.Outcomes = append(g.Outcomes, o)
			}
		}
		rep.Gate = g
	}
	if r.IntN(3) == 0 {
		rm := &Remote{Requests: r.Int64(), BytesReceived: r.Int64(), CacheHits: -1, WallMillis: r.Int64()}
		if r.IntN(4) > 0 {
			rm.Sources = []RemoteSource{}
			for range r.IntN(3) {
				s := RemoteSource{Source: randomString(r)}
				if r.IntN(2) == 0 {
					s.Endpoint, s.Revision = randomString(r), randomString(r)
				}
				if r.IntN(2) == 0 {
					s.Repo, s.Commit = randomString(r), randomString(r)
				}
				rm.Sources = append(rm.Sources, s)
			}
		}
		rep.Remote = rm
	}
	return rep
}

func randomDiff(r *rand.Rand) *Diff {
	row := func() DiffRow {
		return DiffRow{Key: randomString(r), Status: RowStatus(randomString(r)), OldBytes: r.Int64(), NewBytes: -r.Int64(), DeltaBytes: 3,
			DeltaPct: randomFloat(r), OldParams: r.Int64(), NewParams: 0, OldBaseline: r.Int64(), NewBaseline: 1}
	}
	d := &Diff{SchemaVersion: 1, Tool: randomString(r), Kind: randomString(r), By: DiffBy(randomString(r)), Total: row()}
	if r.IntN(2) == 0 {
		d.ToolVersion = randomString(r)
	}
	if r.IntN(4) > 0 {
		d.Old = []File{{Path: randomString(r), Format: randomString(r), Label: randomString(r)}}
		d.New = []File{}
	}
	if r.IntN(4) > 0 {
		d.Rows = []DiffRow{}
		for range r.IntN(4) {
			d.Rows = append(d.Rows, row())
		}
	}
	return d
}

// TestJSONWriterRandom: random reports and diffs, every field drawn from
// values that stress the escaping, the float formatting and the omitempty
// rules; those encoding/json refuses are refused with its error.
func TestJSONWriterRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 2026))
	refused := 0
	for range 3000 {
		rep := randomReport(r)
		if _, err := marshalLayout(rep); err != nil {
			refused++
		}
		agree(t, "random report", rep)
		agree(t, "random diff", randomDiff(r))
	}
	if refused == 0 || refused > 2000 {
		t.Fatalf("%d of 3000 random reports refused: the draw no longer reaches both paths", refused)
	}
}

// TestJSONStringEveryByte: every byte value, alone and after a
// multi-byte rune, is escaped as encoding/json escapes it.
func TestJSONStringEveryByte(t *testing.T) {
	for c := range 256 {
		for _, s := range []string{string([]byte{byte(c)}), "a" + string([]byte{byte(c)}) + "é", "\u2028" + string([]byte{byte(c), byte(c)})} {
			e := &jsonAppender{}
			e.str(s)
			want, _ := json.Marshal(s)
			if !bytes.Equal(e.b, want) {
				t.Fatalf("%q: %s, want %s", s, e.b, want)
			}
		}
	}
}

// FuzzJSONWriter: any name and any float make a report the appender
// writes as the reference writes it.
func FuzzJSONWriter(f *testing.F) {
	f.Add("layers.0.q.weight", 1.5, int64(3))
	f.Add("<\u2028\xff>", 1e-7, int64(-1))
	f.Add("", math.Inf(1), int64(0))
	for _, x := range []float64{4, -3, math.Copysign(0, -1), 1 << 53, 1<<53 - 1, 1e20, 1e21, -1e22} { // whole numbers
		f.Add("w", x, int64(1))
	}
	f.Fuzz(func(t *testing.T, name string, x float64, n int64) {
		rep := largeReport(t, 10, 0)
		rep.Tensors[3].Name = name
		rep.Tensors[4].SharesStorageWith = []string{name, name}
		rep.Tensors[5].ElementSize = x
		rep.Tensors[6].Shape = []int64{n, n}
		rep.Modules[1].Module = &name
		rep.Totals.Ratio = x
		agree(t, "fuzzed report", rep)
		d := NewDiff(rep, largeReport(t, 12, 1), DiffByTensor)
		d.Rows[0].DeltaPct = x
		agree(t, "fuzzed diff", d)
	})
}

// TestEscape8: the first byte escape8 marks is the first byte plain does
// not mark, for every byte value at every place among plain ones.
func TestEscape8(t *testing.T) {
	for c := range 256 {
		for at := range 8 {
			for _, fill := range []byte{'a', ' ', '~', '!', '%', '\'', '=', '?', '[', ']'} {
				b := bytes.Repeat([]byte{fill}, 8)
				b[at] = byte(c)
				if at < 7 {
					b[7] = '<' // a later special byte must not hide it
				}
				m := escape8(binary.LittleEndian.Uint64(b))
				want := 8
				for i, x := range b {
					if !plain[x] {
						want = i
						break
					}
				}
				got := 8
				if m != 0 {
					got = bits.TrailingZeros64(m) >> 3
				}
				if got != want {
					t.Fatalf("%q: first byte to escape %d, want %d", b, got, want)
				}
			}
		}
	}
}
