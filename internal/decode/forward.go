package decode

// forward multiplies decoded weights with one batch of inputs: y = x Wᵀ for
// a [rows, cols] weight W and x of Batch rows. x and y are allocated once,
// from the activations site: x for the widest weight, y for the outputs of
// the tallest layer, each weight of a layer writing its own part.
type forward struct {
	batch int
	x, y  []float32
}

// newForward allocates the batch buffers, or returns nil when the pass has
// no batch.
func (p *Pass) newForward(led *ledger) *forward {
	if p.opts.Batch <= 0 || len(p.units) == 0 {
		return nil
	}
	var rows, cols int
	for _, l := range p.layers {
		var r int
		for _, i := range l.units {
			r += p.units[i].rows
			cols = max(cols, p.units[i].cols)
		}
		rows = max(rows, r)
	}
	f := &forward{batch: p.opts.Batch}
	b := int64(f.batch)
	var sx, sy int64
	f.x, sx = allocActivations(b * int64(cols))
	f.y, sy = allocActivations(b * int64(rows))
	led.add(KeyActivations, 4*b*int64(cols+rows), sx+sy)
	// Inputs in [-1, 1) from a fixed generator (splitmix64), so every run
	// multiplies the same numbers.
	s := uint64(0x9e3779b97f4a7c15)
	for i := range f.x {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		z ^= z >> 31
		f.x[i] = float32(z>>40)/(1<<23) - 1
	}
	return f
}

// apply multiplies the decoded weights of one layer with the batch, on the
// crew.
func (f *forward) apply(c *crew, units []*unit) {
	off := 0
	for _, u := range units {
		u.y = f.y[off : off+f.batch*u.rows]
		off += len(u.y)
	}
	c.run(units, f)
	for _, u := range units {
		u.y = nil
	}
}

// rows computes rows [lo, hi) of u's outputs y = x Wᵀ: one output per
// weight row and batch row.
func (f *forward) rows(u *unit, lo, hi int) {
	rows, cols := u.rows, u.cols
	for o := lo; o < hi; o++ {
		w := u.out[o*cols : (o+1)*cols]
		for b := range f.batch {
			u.y[b*rows+o] = dot(f.x[b*cols:(b+1)*cols], w)
		}
	}
}

// dot returns the dot product of a and b (len(b) >= len(a)), in four
// independent sums so the additions pipeline.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}
