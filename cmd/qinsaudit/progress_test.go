package main

import (
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	var out strings.Builder
	clock := time.Unix(0, 0)
	p := newProgressLine(&out, func() time.Time { return clock })
	step := func(d time.Duration, done, total int64) string {
		clock = clock.Add(d)
		before := out.Len()
		p.update(done, total)
		return out.String()[before:]
	}
	if got := step(500*time.Millisecond, 10, 100); got != "" {
		t.Fatalf("drew %q before the first second", got)
	}
	if got, want := step(600*time.Millisecond, 25, 1000), "\r\x1b[Kdecoding weights   2% (25/1,000)"; got != want {
		t.Fatalf("after a second: %q, want %q", got, want)
	}
	if got := step(50*time.Millisecond, 500, 1000); got != "" {
		t.Fatalf("redrew %q within %v", got, progressEvery)
	}
	if got, want := step(60*time.Millisecond, 500, 1000), "\r\x1b[Kdecoding weights  50% (500/1,000)"; got != want {
		t.Fatalf("after the throttle: %q, want %q", got, want)
	}
	if got, want := step(time.Millisecond, 1000, 1000), "\r\x1b[K"; got != want {
		t.Fatalf("on finish: %q, want the line cleared (%q)", got, want)
	}
	if got := step(time.Second, 1000, 1000); got != "" {
		t.Fatalf("cleared twice: %q", got)
	}
}

func TestProgressNotATerminal(t *testing.T) {
	if progress(&strings.Builder{}) != nil {
		t.Fatal("a progress callback for a writer that is not a terminal")
	}
}
