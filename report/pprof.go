package report

import (
	"io"

	"github.com/google/pprof/profile"
)

// WritePprof writes where the model's bytes go as a pprof profile, so that
// `go tool pprof -http=: FILE` draws a flame graph of it with no other
// tooling: one sample per tensor, with sample types stored_bytes and
// baseline_bytes, on the stack role > module > tensor.
func WritePprof(w io.Writer, rep *Report) error {
	if rep.summary {
		return ErrSummary
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "stored_bytes", Unit: "bytes"}, {Type: "baseline_bytes", Unit: "bytes"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:     1,
	}
	locs := map[string]*profile.Location{}
	loc := func(name string) *profile.Location {
		if l, ok := locs[name]; ok {
			return l
		}
		fn := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name}
		p.Function = append(p.Function, fn)
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
		p.Location = append(p.Location, l)
		locs[name] = l
		return l
	}
	for _, t := range rep.Tensors {
		module := orTopLevel(t.Module)
		// Leaf first: the tensor, then its module, then its role.
		p.Sample = append(p.Sample, &profile.Sample{
			Location: []*profile.Location{loc("tensor " + orTopLevel(t.Name)), loc("module " + module), loc("role " + t.Role)},
			Value:    []int64{t.StoredBytes, t.BaselineBytes},
			Label:    map[string][]string{"dtype": {t.DType}, "file": {t.File}},
		})
	}
	if err := p.CheckValid(); err != nil {
		return err
	}
	return p.Write(w)
}
