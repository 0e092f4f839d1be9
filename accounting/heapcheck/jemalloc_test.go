package heapcheck

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

const jeSmall = `heap_v2/524288
  t*: 3: 1048704 [0: 0]
  t0: 2: 1048640 [0: 0]
  t1: 1: 64 [0: 0]
@ 0x7f0000001010 0x400100
  t*: 1: 1048576 [0: 0]
  t0: 1: 1048576 [0: 0]
@ 0x7f0000002020 0x400100
  t*: 2: 128 [0: 0]
  t0: 1: 64 [0: 0]
  t1: 1: 64 [0: 0]

MAPPED_LIBRARIES:
00400000-00401000 r-xp 00000000 fe:00 1 /usr/bin/python3.11
7f0000000000-7f0000003000 r-xp 00000000 fe:00 2 /usr/lib/libc10.so
`

func TestJemallocSmall(t *testing.T) {
	p, err := Parse("small.heap", []byte(jeSmall))
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != Jemalloc || p.SampleRate != 524288 || len(p.P.Sample) != 2 || len(p.P.SampleType) != 2 {
		t.Fatalf("got %s rate %d, %d samples, types %s", p.Format, p.SampleRate, len(p.P.Sample), types(p.P))
	}
	// A 1 MiB allocation at a 512 KiB rate is sampled with probability
	// 1-e^-2; 64-byte ones with about 64/524288.
	big := p.P.Sample[0].Value
	wantBig := 1048576 / (1 - math.Exp(-2))
	if math.Abs(float64(big[1])-wantBig) > 1 || big[0] != 1 {
		t.Errorf("1 MiB stack un-sampled to %v, want 1 object, %.0f bytes", big, wantBig)
	}
	small := p.P.Sample[1].Value
	if small[0] < 8000 || small[1] < 8000*64 {
		t.Errorf("64 B stack un-sampled to %v, want about 8192 objects", small)
	}
	// Return addresses are stepped back onto the call, and mapped.
	loc := p.P.Sample[0].Location[0]
	if loc.Address != 0x7f000000100f || loc.Mapping == nil || !strings.HasSuffix(loc.Mapping.File, "libc10.so") {
		t.Errorf("location %#x mapping %v", loc.Address, loc.Mapping)
	}
	m, err := Measure(p, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.InUseBytes != big[1]+small[1] || m.SigmaBytes <= 0 {
		t.Errorf("measured %d ± %d", m.InUseBytes, m.SigmaBytes)
	}
}

func TestJemallocAccum(t *testing.T) {
	in := "heap_v2/1\n  t*: 1: 8 [4: 32]\n@ 0x10\n  t*: 1: 8 [4: 32]\nMAPPED_LIBRARIES:\n"
	p, err := Parse("accum.heap", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if types(p.P) != "alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes" {
		t.Errorf("types %s", types(p.P))
	}
	if v := p.P.Sample[0].Value; v[1] != 32 || v[3] != 8 || p.space != 3 {
		t.Errorf("values %v, inuse_space at %d", v, p.space)
	}
}

// TestUnsampleVariance checks the un-sampling and the standard deviation
// Measure reports against a simulated Poisson sampler: the estimate is
// unbiased, and its spread over many runs is the predicted sigma.
func TestUnsampleVariance(t *testing.T) {
	const (
		rate    = 512 << 10
		objects = 200
		size    = 65536 // sampled with probability 1-e^-1/8, about 12%
		runs    = 4000
	)
	rng := rand.New(rand.NewPCG(1, 2))
	q := -math.Expm1(-float64(size) / rate)
	var sum, sumSq, sigma float64
	for range runs {
		n := 0
		for range objects {
			if rng.Float64() < q {
				n++
			}
		}
		o, b := unsample(int64(n), int64(n*size), rate)
		sum += float64(b)
		sumSq += float64(b) * float64(b)
		sigma += math.Sqrt(stackVariance(o, b, rate))
	}
	mean := sum / runs
	sd := math.Sqrt(sumSq/runs - mean*mean)
	truth := float64(objects * size)
	if math.Abs(mean-truth) > 0.02*truth {
		t.Errorf("mean estimate %.0f, truth %.0f", mean, truth)
	}
	if got := sigma / runs; math.Abs(got-sd) > 0.1*sd {
		t.Errorf("predicted sigma %.0f, observed %.0f", got, sd)
	}
}
