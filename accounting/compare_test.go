package accounting

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// toyQINS is the seed's toy model with every linear QINS-log encoded: an
// fp32 embedding (5000 x 256) and 3 blocks of 4 attention (256 x 256) and 2
// FFN (1024 x 256) linears, each as uint8 stored + int8 sign + two f32
// scalars.
func toyQINS(t *testing.T) *Result {
	t.Helper()
	m := &Model{Files: []File{{Path: "toy_qins_log.pt", Format: "pytorch-zip", SizeBytes: 9_900_000}}}
	add := func(name, dtype string, shape ...int64) {
		d, _ := LookupDType(dtype)
		n, _ := Numel(shape)
		b, _ := d.Bytes(n)
		m.Tensors = append(m.Tensors, Tensor{Name: name, DType: dtype, Shape: shape, Storage: fmt.Sprint(len(m.Tensors)), StorageBytes: b})
	}
	add("embed.weight", "float32", 5000, 256)
	for blk := range 3 {
		lin := func(name string, out, in int64) {
			p := fmt.Sprintf("blocks.%d.%s.", blk, name)
			add(p+"stored", "uint8", out, in)
			add(p+"sign", "int8", out, in)
			add(p+"log_min", "float32")
			add(p+"log_max", "float32")
		}
		for _, l := range []string{"q", "k", "v", "o"} {
			lin("attn."+l, 256, 256)
		}
		lin("ffn.up", 1024, 256)
		lin("ffn.down", 256, 1024)
	}
	res, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

const (
	toyStored  = 9_838_736  // 2,359,296 x 2 + 18 x 8 + 5,120,000
	toyDecoded = 9_437_184  // 2,359,296 x 4
	toyFP32    = 14_557_184 // 13.88 MiB
	toyParams  = 5_120_000  // sum over model.parameters(): the embedding only
)

func TestToyFigures(t *testing.T) {
	f := figures(toyQINS(t), false)
	if f.stored != toyStored || f.decoded != toyDecoded || f.baseline != toyFP32 || f.stored-f.unshown != toyParams {
		t.Errorf("figures = %+v, want stored %d, decoded %d, baseline %d, without encoded %d", f, toyStored, toyDecoded, toyFP32, toyParams)
	}
	if f.largest != 1024*256*4 || !strings.Contains(f.largestM, "ffn") {
		t.Errorf("largest decoded module %s %d, want an ffn linear of %d", f.largestM, f.largest, 1024*256*4)
	}
}

func TestCompareVerdicts(t *testing.T) {
	res := toyQINS(t)
	exact := func(n int64) HeapMeasurement {
		return HeapMeasurement{Profile: "p.heap", Base: "base.heap", Format: "test", InUseBytes: n, SampleRate: 1}
	}
	attributed := func(n int64) HeapMeasurement {
		m := exact(n)
		m.Attributed = "libc10"
		return m
	}
	for _, c := range []struct {
		name     string
		m        HeapMeasurement
		verdict  Verdict
		expected int64
		msg      string
		finding  FindingKind
	}{
		{"stored", exact(toyStored + 60_000), Consistent, toyStored, "no decoded copies", ""},
		{"cached decode", attributed(toyStored + toyDecoded + 140_000), HoldsDecodedCopies, toyStored + toyDecoded,
			"more than the float32 model itself, 13.88 MiB", ""},
		// Unattributed, 3% of 18 MiB cannot tell the decoded copies from a
		// second copy of the stored weights, 0.39 MiB apart.
		{"cached decode, 3%", exact(toyStored + toyDecoded + 140_000), Inconclusive, toyStored,
			"no profile tells them apart", ""},
		{"second copy", attributed(2*toyStored - 50_000), HoldsSecondCopy, 2 * toyStored, "the loaded state dict kept alive", ""},
		{"nothing loaded", attributed(3_000), Unexplained, toyStored, "started after the weights were allocated", HeapProfileLate},
		{"streaming", exact(toyStored + 1024*256*4 + 10_000), HoldsDecodedCopies, toyStored + 1024*256*4, "one decoded float32 layer", ""},
		{"late start", exact(200_000), Unexplained, toyStored, "started after the weights were allocated", HeapProfileLate},
		{"no base", HeapMeasurement{Profile: "p.heap", Format: "test", InUseBytes: 76_000_000, SampleRate: 1}, Unexplained, toyStored,
			"without --heap-base", HeapProfileNoBase},
		// At one sample per 512 KiB, the toy's 64 and 256 KiB buffers leave
		// the stored weights ±1.45 MiB (1σ): 9 MiB of decoded copies cannot
		// be told from none.
		{"sampled", HeapMeasurement{Format: "test", Base: "b", InUseBytes: toyStored + 1_000_000, SampleRate: 512 << 10, SigmaBytes: 400_000},
			Inconclusive, toyStored, "sampled every 512 KiB on average: ±390.62 KiB (1σ)", ""},
		{"sampled, decider", HeapMeasurement{Format: "test", Base: "b", InUseBytes: toyStored + 2_000_000, SampleRate: 512 << 10, SigmaBytes: 100_000},
			Inconclusive, toyStored, "or less tells them apart (qinsaudit profile --sample-bytes", ""},
		{"sampled beyond every cause", HeapMeasurement{Format: "test", Base: "b", InUseBytes: toyStored + 40_000_000, SampleRate: 512 << 10, SigmaBytes: 100_000},
			Unexplained, toyStored, "more in use than the stored weights", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc := Compare(res, c.m, nil, CompareOptions{})
			got := cc.Comparisons[0]
			if got.Verdict != c.verdict || got.ExpectedBytes != c.expected || !strings.Contains(got.Message, c.msg) {
				t.Errorf("got %s, expected %d, %q; want %s, %d, message containing %q", got.Verdict, got.ExpectedBytes, got.Message, c.verdict, c.expected, c.msg)
			}
			if got.ToleranceBytes <= 0 {
				t.Errorf("tolerance %d, want > 0", got.ToleranceBytes)
			}
			if c.finding != "" && !hasFinding(cc.Findings, c.finding) {
				t.Errorf("findings %v, want %s", cc.Findings, c.finding)
			}
			if (len(cc.Failures()) > 0) != c.verdict.Failing() {
				t.Errorf("Failures() = %v for verdict %s", cc.Failures(), c.verdict)
			}
		})
	}
}

func hasFinding(fs []Finding, k FindingKind) bool {
	for _, f := range fs {
		if f.Kind == k {
			return true
		}
	}
	return false
}

func TestCompareTolerance(t *testing.T) {
	res := toyQINS(t)
	// The profile's own sigma, when wider than the stored weights' at this
	// rate (±1.45 MiB), is taken.
	m := HeapMeasurement{Format: "test", Base: "b", InUseBytes: toyStored, SampleRate: 512 << 10, SigmaBytes: 2_000_000, UnlistedBytes: 7}
	got := Compare(res, m, nil, CompareOptions{RelTolerance: 0.01, MinToleranceBytes: 1}).Comparisons[0].ToleranceBytes
	want := int64(98_388) + 3*2_000_000 + 7 // 1% of stored, rounded up, + 3 sigma + unlisted
	if got != want {
		t.Errorf("tolerance %d, want %d", got, want)
	}
	// Else the stored weights' own: the sum over the toy's buffers of
	// n²/(exp(n/R)-1).
	m.SigmaBytes = 1000
	var v float64
	for _, r := range res.Rows {
		if n := float64(r.StoredBytes); n > 0 {
			v += n * n / math.Expm1(n/float64(512<<10))
		}
	}
	got = Compare(res, m, nil, CompareOptions{RelTolerance: 0.01, MinToleranceBytes: 1}).Comparisons[0].ToleranceBytes
	want = int64(98_388) + int64(math.Ceil(3*math.Sqrt(v))) + 7
	if got != want || v < 1.4e6*1.4e6 {
		t.Errorf("tolerance %d, want %d (sigma %.0f)", got, want, math.Sqrt(v))
	}
	got = Compare(res, HeapMeasurement{InUseBytes: toyStored}, nil, CompareOptions{RelTolerance: 0.001}).Comparisons[0].ToleranceBytes
	if got != DefaultMinToleranceBytes {
		t.Errorf("tolerance %d, want the floor %d", got, DefaultMinToleranceBytes)
	}
}

func TestCompareClaims(t *testing.T) {
	res := toyQINS(t)
	claims := []Claim{
		{Name: "weights", Text: "0.41MB", Bytes: 410_000, PrecisionBytes: 5_000, OtherUnitBytes: 429_916},
		{Name: "parameters()", Text: "5120000", Bytes: toyParams},
		{Name: "weights", Text: "9.4MiB", Bytes: 9_856_614, PrecisionBytes: 52_428, OtherUnitBytes: 9_400_000},
		{Name: "weights", Text: "9.38MB", Bytes: 9_380_000, PrecisionBytes: 5_000, OtherUnitBytes: 9_835_643},
		{Name: "fp32", Text: "13.88MiB", Bytes: 14_554_235, PrecisionBytes: 5_242, OtherUnitBytes: 13_880_000},
	}
	for _, c := range []struct {
		measured int64
		verdicts []Verdict
		msgs     []string
	}{
		{toyStored + 60_000,
			[]Verdict{ClaimDisagrees, ClaimDisagrees, Consistent, ClaimDisagrees, ClaimDisagrees},
			[]string{"24x more than the claim", "summing model.parameters() skips registered buffers", "matches", "other unit", "the encoding does not show"}},
		{toyStored + toyDecoded + 140_000,
			[]Verdict{ClaimDisagrees, ClaimDisagrees, Consistent, ClaimDisagrees, ClaimDisagrees},
			[]string{"with their decoded copies", "model.parameters()", "weights at rest", "other unit", "the encoding does not show"}},
	} {
		cc := Compare(res, HeapMeasurement{Format: "test", Base: "b", Attributed: "libc10", InUseBytes: c.measured, SampleRate: 1}, claims, CompareOptions{})
		if len(cc.Comparisons) != 1+len(claims) {
			t.Fatalf("%d comparisons, want %d", len(cc.Comparisons), 1+len(claims))
		}
		for i, x := range cc.Comparisons[1:] {
			if x.Verdict != c.verdicts[i] || !strings.Contains(x.Message, c.msgs[i]) {
				t.Errorf("measured %d, %s: %s %q; want %s, message containing %q", c.measured, x.Subject, x.Verdict, x.Message, c.verdicts[i], c.msgs[i])
			}
			if x.ExpectedBytes != claims[i].Bytes || x.MeasuredBytes != c.measured {
				t.Errorf("%s: measured %d expected %d", x.Subject, x.MeasuredBytes, x.ExpectedBytes)
			}
		}
	}
}

func TestCompareBudget(t *testing.T) {
	res := toyQINS(t)
	m := HeapMeasurement{Format: "test", Base: "b", InUseBytes: toyStored + toyDecoded, SampleRate: 1}
	if cc := Compare(res, m, nil, CompareOptions{MaxHeapOverStored: 2.5}); cc.OverBudget != "" {
		t.Errorf("under budget: %q", cc.OverBudget)
	}
	cc := Compare(res, m, nil, CompareOptions{MaxHeapOverStored: 1.1})
	if !strings.Contains(cc.OverBudget, "1.96x the stored weights (18.38 MiB of 9.38 MiB), over the budget of 1.1x") || !hasFinding(cc.Findings, HeapOverBudget) {
		t.Errorf("over budget: %q, findings %v", cc.OverBudget, cc.Findings)
	}
	if len(cc.Failures()) != 0 {
		t.Errorf("an explained difference failed: %v", cc.Failures())
	}
}

func TestBytesFormat(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{ByteSize(9_838_736), "9.38 MiB"},
		{ByteSize(512 << 10), "512 KiB"},
		{ByteSize(9 << 20), "9 MiB"},
		{ByteSize(100), "100 B"},
		{ByteSize(-19_275_920), "-18.38 MiB"},
		{both(9_902_431), "9.44 MiB (9.9 MB)"},
		{ByteCount(9_838_736), "9,838,736 B"},
		{ByteCount(-410_000), "-410,000 B"},
		{times(9_838_736, 410_000), "24x more than"},
		{times(5_120_000, 9_838_736), "48% less than"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestCompareOverflow: a measurement that differs from the stored bytes by
// MinInt64 once made abs negative and the difference "within" tolerance.
func TestCompareOverflow(t *testing.T) {
	res := toyQINS(t)
	for _, n := range []int64{toyStored + math.MinInt64, math.MinInt64, math.MaxInt64, 1<<62 + 1} {
		cc := Compare(res, HeapMeasurement{Format: "test", Base: "b", InUseBytes: n, SampleRate: 1},
			[]Claim{{Name: "w", Text: "9.38MiB", Bytes: toyStored}}, CompareOptions{})
		for _, x := range cc.Comparisons {
			if !x.Verdict.Failing() {
				t.Errorf("in use %d: %s: %s (%s)", n, x.Subject, x.Verdict, x.Message)
			}
		}
	}
	if Abs(math.MinInt64) < 0 {
		t.Error("Abs(MinInt64) is negative")
	}
}

// TestCompareStreamingLayer: a runtime that decodes a whole layer into one
// buffer, as qinsaudit decode --stream does, is explained: the toy's
// largest layer is a block, 4 attention and 2 FFN linears at fp32.
func TestCompareStreamingLayer(t *testing.T) {
	res := toyQINS(t)
	const block = 4*256*256*4 + 2*1024*256*4
	if f := figures(res, false); f.layer != block || f.layerL != "blocks.0" {
		t.Fatalf("largest decoded layer %s %d, want blocks.0 %d", f.layerL, f.layer, block)
	}
	cc := Compare(res, HeapMeasurement{Format: "test", Base: "b", InUseBytes: toyStored + block + 432, SampleRate: 1}, nil, CompareOptions{})
	x := cc.Comparisons[0]
	if x.Verdict != HoldsDecodedCopies || x.ExpectedBytes != toyStored+block || !strings.Contains(x.Message, "a whole layer at a time") {
		t.Errorf("%s: %s, expected %d: %s", x.Subject, x.Verdict, x.ExpectedBytes, x.Message)
	}
}

// TestFiguresDecodeOnlyWeights: the decoded copies are those of weights,
// as the decode pass decodes them; a float16 bias or norm, a float64
// buffer and a tied head are held as they are.
func TestFiguresDecodeOnlyWeights(t *testing.T) {
	m := &Model{Files: []File{{Path: "m.safetensors", Format: "safetensors"}}}
	add := func(name, dtype string, shape ...int64) {
		d, _ := LookupDType(dtype)
		n, _ := Numel(shape)
		b, _ := d.Bytes(n)
		m.Tensors = append(m.Tensors, Tensor{Name: name, DType: dtype, Shape: shape, Storage: name, StorageBytes: b})
	}
	add("layers.0.fc.weight", "float16", 64, 32)
	add("layers.0.fc.bias", "float16", 64)
	add("layers.0.norm.weight", "float16", 32)
	add("layers.0.rope.inv_freq", "float64", 16)
	add("layers.0.proj.weight", "float32", 32, 32)
	res, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for i := range res.Rows {
		r := &res.Rows[i]
		if Decoded(r, "float32", true) {
			want += r.BaselineBytes
		}
	}
	if f := figures(res, true); f.decoded != 64*32*4 || f.decoded != want {
		t.Errorf("decoded %d, want the float16 weight at fp32, %d (the predicate says %d)", f.decoded, 64*32*4, want)
	}
	// Without widening, a runtime keeps the float16 weight as stored:
	// nothing is decoded, and the widened model is its own explanation.
	if f := figures(res, false); f.decoded != 0 || f.widened != res.Total.StoredBytes+64*32*2+64*2+32*2 {
		t.Errorf("without widen: decoded %d (want 0), widened %d", f.decoded, f.widened)
	}
}

func TestDecodedPredicate(t *testing.T) {
	for _, c := range []struct {
		row    Row
		target string
		want   bool // with widen; without, float16/bfloat16 weights are not decoded
	}{
		{Row{DType: "uint8", Class: Class{Role: EncodedLinear, Part: "weight"}}, "float32", true},
		{Row{DType: "int8", Class: Class{Role: EncodedLinear, Part: "sign"}}, "float32", false},
		{Row{DType: "float16", Class: Class{Role: Untouched, Part: "weight"}}, "float32", true},
		{Row{DType: "bfloat16", Class: Class{Role: Embedding, Part: "weight"}}, "float32", true},
		{Row{DType: "bfloat16", Class: Class{Role: Embedding, Part: "weight"}}, "bfloat16", false},
		{Row{DType: "bfloat16", Class: Class{Role: Embedding, Part: "weight"}, Tied: true}, "float32", false},
		{Row{DType: "float16", Class: Class{Role: Untouched, Part: "bias"}}, "float32", false},
		{Row{DType: "float64", Class: Class{Role: Untouched, Part: "weight"}}, "float32", false},
		{Row{DType: "float32", Class: Class{Role: Untouched, Part: "weight"}}, "float32", false},
		{Row{DType: "float16", Class: Class{Role: Untouched, Part: "leftover_weight", Leftover: true}}, "float32", false},
		{Row{DType: "float16", Class: Class{Role: OptimizerState, Part: "state"}}, "float32", false},
	} {
		if got := Decoded(&c.row, c.target, true); got != c.want {
			t.Errorf("Decoded(%s %s %s, %s, widen) = %v", c.row.Role, c.row.Part, c.row.DType, c.target, got)
		}
		if got := Decoded(&c.row, c.target, false); got != (c.want && c.row.Role == EncodedLinear) {
			t.Errorf("Decoded(%s %s %s, %s) = %v", c.row.Role, c.row.Part, c.row.DType, c.target, got)
		}
	}
}

// TestCompareCauses: a float16 model held at float32 is widened, not
// decoded copies (float16 weights are held as stored unless Widen); a
// checkpoint's optimizer state held beside the model is named; each only
// within its tolerance.
func TestCompareCauses(t *testing.T) {
	m := &Model{Files: []File{{Path: "m.pt", Format: "pytorch-zip"}}}
	add := func(name, dtype string, shape ...int64) {
		t.Helper()
		d, _ := LookupDType(dtype)
		n, _ := Numel(shape)
		b, _ := d.Bytes(n)
		m.Tensors = append(m.Tensors, Tensor{Name: name, DType: dtype, Shape: shape, Storage: name, StorageBytes: b})
	}
	for i := range 4 {
		add(fmt.Sprintf("layers.%d.fc.weight", i), "float16", 1024, 1024)
	}
	// An all-float16 model widened is its stored bytes twice, as is a
	// second copy: no profile tells the two apart.
	res, err := Audit(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hm := HeapMeasurement{Format: "test", Attributed: "libc10", InUseBytes: 2 * 4 * 1024 * 1024 * 2, SampleRate: 1}
	if x := Compare(res, hm, nil, CompareOptions{}).Comparisons[0]; x.Verdict != Inconclusive || !strings.Contains(x.Message, "take the same bytes, 16,777,216 B: no profile tells them apart") {
		t.Errorf("all float16, twice the stored bytes: %s: %s", x.Verdict, x.Message)
	}

	add("layers.0.proj.weight", "float32", 256, 1024)
	add("optimizer.state.0.exp_avg", "float32", 512, 1024)
	if res, err = Audit(m, Options{}); err != nil {
		t.Fatal(err)
	}
	const stored, optim = 4*1024*1024*2 + 256*1024*4, 512 * 1024 * 4
	if res.Total.StoredBytes != stored {
		t.Fatalf("stored %d", res.Total.StoredBytes)
	}
	at := func(n int64, opts CompareOptions) Comparison {
		hm := HeapMeasurement{Format: "test", Attributed: "libc10", InUseBytes: n, SampleRate: 1}
		return Compare(res, hm, nil, opts).Comparisons[0]
	}
	for _, c := range []struct {
		n    int64
		opts CompareOptions
		want Verdict
	}{
		{stored + 1000, CompareOptions{}, Consistent},
		{2*stored - 1<<20 - 1000, CompareOptions{}, HoldsWidened},
		{2*stored + 1000, CompareOptions{}, HoldsSecondCopy},
		{stored + optim + 5000, CompareOptions{}, HoldsOptimizerState},
		// With Widen, the float32 copies are decoded copies beside the
		// stored weights.
		{stored + 4*1024*1024*4, CompareOptions{Widen: true}, HoldsDecodedCopies},
		{3 * stored, CompareOptions{}, Unexplained},
	} {
		if x := at(c.n, c.opts); x.Verdict != c.want {
			t.Errorf("in use %d (%+v): %s, want %s: %s", c.n, c.opts, x.Verdict, c.want, x.Message)
		}
	}
}

// TestUnlistedIsOneSided: what a truncated dump leaves unlisted may be the
// focus's own, so the truth may be more than the listed stacks (or, for a
// base's, less), never the other way: a claim far below the listed bytes
// still disagrees however much is unlisted.
func TestUnlistedIsOneSided(t *testing.T) {
	res := toyQINS(t)
	claims := []Claim{{Name: "weights", Text: "0.41MB", Bytes: 410_000, PrecisionBytes: 5_000}}
	m := HeapMeasurement{Format: "test", Attributed: "libc10", InUseBytes: toyStored, SampleRate: 1, UnlistedBytes: 30 << 20}
	cc := Compare(res, m, claims, CompareOptions{})
	if v := cc.Comparisons[1].Verdict; v != ClaimDisagrees {
		t.Errorf("claim below the listed bytes: %s: %s", v, cc.Comparisons[1].Message)
	}
	// Decoded copies lie within what is unlisted above: no verdict.
	if v := cc.Comparisons[0].Verdict; v != Inconclusive {
		t.Errorf("unlisted above: %s", v)
	}
	// The same bytes unlisted in the base only widen downwards: the listed
	// measurement equals the stored weights, decoded copies are above it.
	m.UnlistedBytes, m.UnlistedBaseBytes = 0, 30<<20
	cc = Compare(res, m, claims, CompareOptions{})
	if v := cc.Comparisons[0].Verdict; v != Consistent {
		t.Errorf("unlisted in the base: %s: %s", v, cc.Comparisons[0].Message)
	}
	if c := cc.Comparisons[1]; c.Verdict != Inconclusive && c.Verdict != ClaimDisagrees {
		t.Errorf("claim with a truncated base: %s", c.Verdict)
	}
	// The reported tolerance is the side the expected figure lies on.
	if c := cc.Comparisons[0]; max(c.MeasuredBytes-c.ExpectedBytes, c.ExpectedBytes-c.MeasuredBytes) > c.ToleranceBytes {
		t.Errorf("%s: measured %d expected %d ± %d but %s", c.Subject, c.MeasuredBytes, c.ExpectedBytes, c.ToleranceBytes, c.Verdict)
	}
}

// TestOverBudget: the heap budget's one definition, at its edges.
func TestOverBudget(t *testing.T) {
	for _, c := range []struct {
		inUse, stored int64
		maxOver       float64
		ratio         float64
		over          bool
	}{
		{300, 100, 2, 3, true},
		{200, 100, 2, 2, false}, // at the budget is within it
		{300, 100, 0, 3, false}, // no budget
		{300, 0, 2, 0, false},   // nothing stored
		{0, 100, 2, 0, false},
	} {
		r, over := OverBudget(c.inUse, c.stored, c.maxOver)
		if r != c.ratio || over != c.over {
			t.Errorf("OverBudget(%d, %d, %v) = %v, %v; want %v, %v", c.inUse, c.stored, c.maxOver, r, over, c.ratio, c.over)
		}
		if f := HeapBudget("heap in use", c.inUse, c.stored, c.maxOver); (f != nil) != c.over {
			t.Errorf("HeapBudget(%d, %d, %v) = %+v, want a finding: %v", c.inUse, c.stored, c.maxOver, f, c.over)
		}
	}
}
