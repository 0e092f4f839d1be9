package decode

import (
	"cmp"
	"fmt"
	"runtime"
	"time"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// Policy is what a pass does with the weights it has decoded.
type Policy int

const (
	// Stream decodes layer by layer into one buffer sized for the largest
	// layer, reused by every layer: the least memory a runtime can get
	// away with.
	Stream Policy = iota
	// Cache keeps every decoded weight until the pass ends, as the seed's
	// QINS modules did.
	Cache
)

func (p Policy) String() string {
	switch p {
	case Stream:
		return "stream"
	case Cache:
		return "cache"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// Options control a pass.
type Options struct {
	Policy Policy
	// Alpha is the QINS rational codec's alpha for modules that do not
	// store one; 0 means 1.
	Alpha float32
	// Batch is the number of input rows each decoded weight is multiplied
	// with (a forward pass); 0 decodes only.
	Batch int
	// Workers is how many goroutines share the work; 0 means GOMAXPROCS.
	Workers int
	// Measure, when set, is called at each phase and returns the heap in
	// use per allocation site key (see Site and Keys).
	Measure func(phase string) (map[string]int64, error)
	// Widen decodes float16 and bfloat16 weights to float32 too
	// (accounting.Decoded); by default they are held as stored, as a
	// runtime computing in those dtypes holds them.
	Widen bool
	// Progress, when set, is called after each decoded layer with the
	// number of weights decoded so far and the total.
	Progress func(done, total int64)
	// LoadProgress, when set, is called as Load reads the storages, with
	// the bytes read so far and the total, from one goroutine at a time.
	LoadProgress func(done, total int64)
}

func (o *Options) alpha() float32 {
	if o.Alpha == 0 {
		return 1
	}
	return o.Alpha
}

func (o *Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// Skipped is an encoded weight the pass does not decode, with the reason.
type Skipped struct {
	Module, Tensor, Scheme, Reason string
	// Bytes is the float32 size of the weight: what the pass's decoded
	// figures leave out.
	Bytes int64
}

// Layer is a group of weights decoded together: a transformer layer
// ("blocks.0"), or a module outside any layer.
type Layer struct {
	Name  string
	Units int
	// Weights is the number of decoded float32 values.
	Weights int64
	// ExpectedBytes is the accounting's float32 size of the layer.
	ExpectedBytes int64
}

// Pass is a model loaded into memory, ready to be decoded.
type Pass struct {
	m        *accounting.Model
	res      *accounting.Result
	opts     Options
	storages map[storageID]*storage
	units    []unit
	layers   []layerUnits
	skipped  []Skipped
	loadTime time.Duration
}

type layerUnits struct {
	Layer
	units []int // indexes into Pass.units
}

// Load reads every storage of m into memory and prepares the decoder of
// every weight to decode, checking each against its storage and side
// tensors. res is m's accounting (accounting.Audit), whose roles choose the
// allocation site of each storage.
func Load(m *accounting.Model, res *accounting.Result, opts Options) (*Pass, error) {
	if len(res.Rows) != len(m.Tensors) {
		return nil, fmt.Errorf("decode: accounting has %d rows for %d tensors", len(res.Rows), len(m.Tensors))
	}
	start := time.Now()
	p := &Pass{m: m, res: res, opts: opts}
	var err error
	if p.storages, err = readStorages(m, res.Rows, opts.workers(), opts.LoadProgress); err != nil {
		return nil, err
	}
	if err := p.prepare(); err != nil {
		return nil, err
	}
	p.loadTime = time.Since(start)
	return p, nil
}

// prepare builds a unit for every weight a runtime decodes to float32
// (accounting.Decoded: every encoded linear and, with Widen, every float16
// or bfloat16 weight), grouped by layer (accounting.DecodeLayer) in file order.
func (p *Pass) prepare() error {
	b := &builder{p: p, byName: make(map[string]int, len(p.m.Tensors))}
	for i, t := range p.m.Tensors {
		if _, dup := b.byName[t.Name]; !dup {
			b.byName[t.Name] = i
		}
	}
	builds := make([]func(*builder, *unit) error, len(p.res.Rows))
	n := 0
	for i := range p.res.Rows {
		r := &p.res.Rows[i]
		switch {
		case !accounting.Decoded(r, "float32", p.opts.Widen):
		case r.Role != accounting.EncodedLinear:
			builds[i] = widenCodec
		case codecs[r.Scheme] != nil:
			builds[i] = codecs[r.Scheme]
		default:
			p.skipped = append(p.skipped, Skipped{Module: r.Module, Tensor: r.Name, Scheme: r.Scheme,
				Reason: "no decoder for this scheme", Bytes: r.Params * 4})
		}
		if builds[i] != nil {
			n++
		}
	}
	p.units = make([]unit, 0, n)
	layerIdx := map[string]int{}
	for i, r := range p.res.Rows {
		if builds[i] == nil {
			continue
		}
		main, err := p.tensor(i)
		if err != nil {
			return err
		}
		b.module, b.main = r.Module, main
		p.units = append(p.units, unit{module: r.Module, tensor: r.Name, expected: r.Params * 4, scheme: cmp.Or(r.Scheme, r.DType),
			layer: accounting.DecodeLayer(&p.res.Rows[i])})
		u := &p.units[len(p.units)-1]
		if err := builds[i](b, u); err != nil {
			return err
		}
		k, ok := layerIdx[u.layer]
		if !ok {
			k = len(p.layers)
			layerIdx[u.layer] = k
			p.layers = append(p.layers, layerUnits{Layer: Layer{Name: u.layer}})
		}
		l := &p.layers[k]
		l.units = append(l.units, len(p.units)-1)
		l.Units++
		l.Weights += u.numel()
		l.ExpectedBytes += u.expected
	}
	return nil
}

// tensor returns tensor i's data.
func (p *Pass) tensor(i int) (tensorData, error) {
	t := &p.m.Tensors[i]
	return view(p.m, t, p.storages[storageID{t.File, t.Storage}])
}

// Layers lists the groups the pass decodes, in order.
func (p *Pass) Layers() []Layer {
	out := make([]Layer, len(p.layers))
	for i, l := range p.layers {
		out[i] = l.Layer
	}
	return out
}

// Decode returns a newly decoded copy of the weight of module (or of the
// tensor of that name), as a [rows, cols] float32 matrix in row-major
// order.
func (p *Pass) Decode(module string) (w []float32, rows, cols int, err error) {
	for i := range p.units {
		if u := &p.units[i]; u.module == module || u.tensor == module {
			w, _ = allocDecoded(u.numel())
			c := newCrew(p.opts.workers())
			defer c.stop()
			v := *u // decode a copy, so that the pass's own unit keeps its buffer
			v.out = w
			c.run([]*unit{&v}, nil)
			return w, u.rows, u.cols, nil
		}
	}
	return nil, 0, 0, fmt.Errorf("decode: no decoded weight for %q", module)
}

// PhaseRecord is what the pass held at one named phase, and what Measure
// found in use then.
type PhaseRecord struct {
	Name string
	// Measured is the heap in use per site key, from Options.Measure; nil
	// without it.
	Measured map[string]int64
	// Live is the bytes the pass held per site key, and Slots the
	// allocator slots they took (Live rounded up by Go's size classes).
	Live, Slots map[string]int64
	// ExpectedDecoded is the accounting's float32 size of the decoded
	// weights held: every decoded layer so far under Cache, the largest
	// layer (the shared buffer) under Stream.
	ExpectedDecoded int64
}

// Stats describe a finished pass.
type Stats struct {
	Policy Policy
	// Widen says whether float16 and bfloat16 weights were decoded
	// (Options.Widen) or held as stored.
	Widen   bool
	Workers int
	Batch   int
	// Weights is the number of float32 values decoded, in Units weights.
	Weights int64
	Units   int
	// LargestLayer is the layer with the largest float32 size.
	LargestLayer Layer
	Layers       []Layer
	Skipped      []Skipped
	// Load, Decode and Forward are the time spent reading storages,
	// decoding (allocating the decoded weights included) and multiplying.
	Load, Decode, Forward time.Duration
	// Phases are what the pass held at each phase, in order.
	Phases []PhaseRecord
}

// ledger tracks the bytes the pass holds per site key.
type ledger struct{ live, slots map[string]int64 }

func (l *ledger) add(key string, n, slot int64) {
	l.live[key] += n
	l.slots[key] += slot
}

func (l *ledger) snapshot() (live, slots map[string]int64) {
	live, slots = make(map[string]int64, len(siteKeys)), make(map[string]int64, len(siteKeys))
	for _, k := range siteKeys {
		live[k], slots[k] = l.live[k], l.slots[k]
	}
	return live, slots
}

// Run decodes every weight layer by layer under the pass's policy,
// multiplies each with the input batch when Options.Batch is set, and
// records the phases after-load, "layer NAME" after each layer,
// after-decode, and end (decoded weights and activations released). The
// loaded storages stay with the pass.
func (p *Pass) Run() (*Stats, error) {
	st := &Stats{Policy: p.opts.Policy, Widen: p.opts.Widen, Workers: p.opts.workers(), Batch: p.opts.Batch,
		Units: len(p.units), Load: p.loadTime, Layers: p.Layers(), Skipped: p.skipped}
	led := &ledger{live: make(map[string]int64, len(siteKeys)), slots: make(map[string]int64, len(siteKeys))}
	for _, s := range p.storages {
		led.add(s.key, int64(len(s.data)), s.slot)
	}
	var total int64
	for _, l := range p.layers {
		total += l.Weights
		if l.ExpectedBytes > st.LargestLayer.ExpectedBytes || st.LargestLayer.Name == "" {
			st.LargestLayer = l.Layer
		}
	}
	record := func(name string, expectedDecoded int64) error {
		r := PhaseRecord{Name: name, ExpectedDecoded: expectedDecoded}
		if p.opts.Measure != nil {
			m, err := p.opts.Measure(name)
			if err != nil {
				return err
			}
			r.Measured = m
		}
		r.Live, r.Slots = led.snapshot()
		st.Phases = append(st.Phases, r)
		return nil
	}
	if err := record(PhaseAfterLoad, 0); err != nil {
		return nil, err
	}

	c := newCrew(p.opts.workers())
	defer c.stop()
	fw := p.newForward(led)
	var shared []float32
	if p.opts.Policy == Stream {
		var most int64
		for _, l := range p.layers {
			most = max(most, l.Weights)
		}
		var slot int64
		shared, slot = allocDecoded(most)
		led.add(KeyDecoded, 4*most, slot)
	}
	var done, cached int64
	units := make([]*unit, 0, len(p.units))
	for _, l := range p.layers {
		units = units[:0]
		var off int64
		t := time.Now() // decode time includes allocating the weights, as PyTorch's does
		for _, i := range l.units {
			u := &p.units[i]
			n := u.numel()
			if p.opts.Policy == Cache {
				var slot int64
				u.out, slot = allocDecoded(n)
				led.add(KeyDecoded, 4*n, slot)
			} else {
				u.out = shared[off : off+n]
				off += n
			}
			units = append(units, u)
		}
		c.run(units, nil)
		st.Decode += time.Since(t)
		if fw != nil {
			t = time.Now()
			fw.apply(c, units)
			st.Forward += time.Since(t)
		}
		st.Weights += l.Weights
		done += l.Weights
		if p.opts.Progress != nil {
			p.opts.Progress(done, total)
		}
		cached += l.ExpectedBytes
		expected := cached
		if p.opts.Policy == Stream {
			expected = st.LargestLayer.ExpectedBytes
		}
		if err := record(PhaseLayer+l.Name, expected); err != nil {
			return nil, err
		}
	}
	last := cached
	if p.opts.Policy == Stream && len(p.layers) > 0 {
		last = st.LargestLayer.ExpectedBytes
	}
	if err := record(PhaseAfterDecode, last); err != nil {
		return nil, err
	}
	// The buffers are not used after this point, so without KeepAlive the
	// collector could free them before the phase above is measured.
	runtime.KeepAlive(shared)
	runtime.KeepAlive(fw)

	// Release the decoded weights and the activations; the pass keeps the
	// loaded storages.
	for i := range p.units {
		p.units[i].out = nil
	}
	led.live[KeyDecoded], led.slots[KeyDecoded] = 0, 0
	led.live[KeyActivations], led.slots[KeyActivations] = 0, 0
	if err := record(PhaseEnd, 0); err != nil {
		return nil, err
	}
	runtime.KeepAlive(p.storages)
	return st, nil
}

// WeightsPerSecond is the decode throughput of a pass; 0 when it decoded
// nothing.
func (s *Stats) WeightsPerSecond() float64 {
	if s.Weights == 0 || s.Decode <= 0 {
		return 0
	}
	return float64(s.Weights) / s.Decode.Seconds()
}
