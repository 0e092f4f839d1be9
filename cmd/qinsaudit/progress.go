package main

import (
	"fmt"
	"github.com/qinsaudit/qinsaudit/accounting"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// progress returns a progress callback drawing one line on w once the pass
// has run for a second, when w is a terminal; nil otherwise.
//
// The line is drawn here rather than by a progress-bar library: the one used
// before (github.com/schollz/progressbar) imports net/http for a feature this
// command never uses, which linked the network stack into every command (a
// dynamically linked binary, and its package initialisation at every start)
// for one line of text redrawn in place.
func progress(w io.Writer) func(done, total int64) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return newProgressLine(f, time.Now).update
}

// progressLine redraws "decoding weights  42% (done/total)" on a terminal:
// not before the first second (a fast pass draws nothing), at most every
// progressEvery, and it clears the line when done reaches total.
type progressLine struct {
	w           io.Writer
	now         func() time.Time
	start, last time.Time
	drawn       bool
}

const (
	progressDelay = time.Second
	progressEvery = 100 * time.Millisecond
)

func newProgressLine(w io.Writer, now func() time.Time) *progressLine {
	return &progressLine{w: w, now: now, start: now()}
}

func (p *progressLine) update(done, total int64) {
	t := p.now()
	if done >= total {
		if p.drawn {
			fmt.Fprint(p.w, "\r\x1b[K")
			p.drawn = false
		}
		return
	}
	if t.Sub(p.start) < progressDelay || (p.drawn && t.Sub(p.last) < progressEvery) {
		return
	}
	p.last, p.drawn = t, true
	pct := 0
	if total > 0 {
		pct = int(float64(done) / float64(total) * 100)
	}
	fmt.Fprintf(p.w, "\r\x1b[Kdecoding weights %3d%% (%s/%s)", pct, accounting.Comma(done), accounting.Comma(total))
}
