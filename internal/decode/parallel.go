package decode

import (
	"sync"
	"sync/atomic"
)

// crew shares a pass's work between the calling goroutine and workers-1
// goroutines that live as long as the crew. It runs one task at a time: a
// layer's weights to decode, or to multiply with the forward batch, cut
// into spans of rows that the members take in turn. One task per layer
// keeps the hand-overs few; the task is reused, so running one allocates
// nothing, and an exact heap profile of the pass stays a profile of its
// buffers.
type crew struct {
	workers int
	tasks   chan *task
	t       task
}

// task is a list of spans to decode or multiply.
type task struct {
	spans []span
	fw    *forward // nil: decode; else multiply with fw's batch
	next  atomic.Int64
	done  sync.WaitGroup
}

// span is rows [lo, hi) of one unit.
type span struct {
	u      *unit
	lo, hi int
}

func newCrew(workers int) *crew {
	c := &crew{workers: max(workers, 1), tasks: make(chan *task)}
	for range c.workers - 1 {
		go func() {
			for t := range c.tasks {
				t.work()
				t.done.Done()
			}
		}()
	}
	return c
}

// stop ends the crew's goroutines.
func (c *crew) stop() { close(c.tasks) }

// run decodes each unit into its out buffer, or, with fw, multiplies each
// unit's decoded weight with fw's batch.
func (c *crew) run(units []*unit, fw *forward) {
	t := &c.t
	t.spans, t.fw = t.spans[:0], fw
	for _, u := range units {
		perRow := u.cols
		if fw != nil {
			perRow *= fw.batch
		}
		size, n := chunks(u.rows, perRow, c.workers)
		for k := range n {
			t.spans = append(t.spans, span{u, k * size, min(k*size+size, u.rows)})
		}
	}
	t.next.Store(0)
	helpers := min(c.workers, len(t.spans)) - 1
	t.done.Add(helpers)
	for range helpers {
		c.tasks <- t
	}
	t.work()
	t.done.Wait()
	clear(t.spans) // drop the units, and fw, so that the crew holds no buffer
	t.fw = nil
}

func (t *task) work() {
	for {
		k := int(t.next.Add(1)) - 1
		if k >= len(t.spans) {
			return
		}
		s := t.spans[k]
		if t.fw != nil {
			t.fw.rows(s.u, s.lo, s.hi)
		} else {
			s.u.decode(s.u.out, s.lo, s.hi)
		}
	}
}

// grain is the least work, in elements, worth handing to another core.
const grain = 16 << 10

// chunks splits rows of perRow elements each between workers: chunks of a
// quarter of a worker's share, so that a worker slowed down by another
// process is made up for by the others, and of at least grain elements, so
// that small work is not split finer than it is worth. Long contiguous
// chunks also keep each core's memory streams long.
func chunks(rows, perRow, workers int) (size, n int) {
	size = max(1, grain/max(perRow, 1), (rows+4*workers-1)/(4*workers))
	return size, (rows + size - 1) / size
}
