package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"
)

// progress returns a progress callback drawing one line, "label 42% (done
// of total)" with the figures formatted by format, on w once the work has
// run for a second, when w is a terminal; nil otherwise.
//
// The line is drawn here rather than by a progress-bar library: the one used
// before (github.com/schollz/progressbar) imports net/http for a feature this
// command never uses, which linked the network stack into every command (a
// dynamically linked binary, and its package initialisation at every start)
// for one line of text redrawn in place.
func progress(w io.Writer, label string, format func(int64) string) func(done, total int64) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return newProgressLine(f, time.Now, label, format).update
}

// progressLine redraws "decoding weights  42% (done of total)" on a
// terminal: not before the first second (fast work draws nothing), at most
// every progressEvery, and it clears the line when done reaches total.
type progressLine struct {
	w           io.Writer
	now         func() time.Time
	label       string
	format      func(int64) string
	start, last time.Time
	drawn       bool
}

const (
	progressDelay = time.Second
	progressEvery = 100 * time.Millisecond
)

func newProgressLine(w io.Writer, now func() time.Time, label string, format func(int64) string) *progressLine {
	return &progressLine{w: w, now: now, label: label, format: format, start: now()}
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
	fmt.Fprintf(p.w, "\r\x1b[K%s %3d%% (%s of %s)", p.label, pct, p.format(done), p.format(total))
}

// activity draws "label: what()" on w, redrawn every progressEvery once
// the work has run for progressDelay, when w is a terminal, until the
// returned stop is called (which clears the line). It is for work whose
// total is not known in advance, such as the requests of a remote read:
// what is polled from counters the work keeps anyway, so the work needs
// no hook.
func activity(w io.Writer, label string, what func() string) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	a := newActivityLine(f, time.Now, label, what)
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				a.clear()
				return
			case <-t.C:
				a.tick()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// activityLine is activity's line, without the goroutine: tick draws it
// (not before progressDelay), clear removes it.
type activityLine struct {
	w     io.Writer
	now   func() time.Time
	label string
	what  func() string
	start time.Time
	drawn bool
}

func newActivityLine(w io.Writer, now func() time.Time, label string, what func() string) *activityLine {
	return &activityLine{w: w, now: now, label: label, what: what, start: now()}
}

func (a *activityLine) tick() {
	if a.now().Sub(a.start) < progressDelay {
		return
	}
	a.drawn = true
	fmt.Fprintf(a.w, "\r\x1b[K%s: %s", a.label, a.what())
}

func (a *activityLine) clear() {
	if a.drawn {
		fmt.Fprint(a.w, "\r\x1b[K")
		a.drawn = false
	}
}
