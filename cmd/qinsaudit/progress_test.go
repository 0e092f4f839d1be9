package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/accounting"
)

func TestProgressLine(t *testing.T) {
	var out strings.Builder
	clock := time.Unix(0, 0)
	p := newProgressLine(&out, func() time.Time { return clock }, "decoding weights", accounting.Comma)
	step := func(d time.Duration, done, total int64) string {
		clock = clock.Add(d)
		before := out.Len()
		p.update(done, total)
		return out.String()[before:]
	}
	if got := step(500*time.Millisecond, 10, 100); got != "" {
		t.Fatalf("drew %q before the first second", got)
	}
	if got, want := step(600*time.Millisecond, 25, 1000), "\r\x1b[Kdecoding weights   2% (25 of 1,000)"; got != want {
		t.Fatalf("after a second: %q, want %q", got, want)
	}
	if got := step(50*time.Millisecond, 500, 1000); got != "" {
		t.Fatalf("redrew %q within %v", got, progressEvery)
	}
	if got, want := step(60*time.Millisecond, 500, 1000), "\r\x1b[Kdecoding weights  50% (500 of 1,000)"; got != want {
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
	if progress(&strings.Builder{}, "loading weights", accounting.ByteSize) != nil {
		t.Fatal("a progress callback for a writer that is not a terminal")
	}
}

func TestLoadingLine(t *testing.T) {
	var out strings.Builder
	clock := time.Unix(0, 0)
	p := newProgressLine(&out, func() time.Time { return clock }, "loading weights", accounting.ByteSize)
	clock = clock.Add(1500 * time.Millisecond)
	p.update(700<<20, 1700<<20)
	if got, want := out.String(), "\r\x1b[Kloading weights  41% (700 MiB of 1.66 GiB)"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func TestActivityLine(t *testing.T) {
	var out strings.Builder
	clock := time.Unix(0, 0)
	n := 0
	a := newActivityLine(&out, func() time.Time { return clock }, "reading hf://org/repo", func() string {
		n++
		return strconv.Itoa(n) + " requests"
	})
	a.tick()
	a.clear()
	if out.Len() != 0 || n != 0 {
		t.Fatalf("drew %q before the first second", out.String())
	}
	clock = clock.Add(time.Second)
	a.tick()
	a.tick()
	if got, want := out.String(), "\r\x1b[Kreading hf://org/repo: 1 requests\r\x1b[Kreading hf://org/repo: 2 requests"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	a.clear()
	a.clear()
	if !strings.HasSuffix(out.String(), "requests\r\x1b[K") || strings.HasSuffix(out.String(), "\r\x1b[K\r\x1b[K") {
		t.Fatalf("not cleared once: %q", out.String())
	}
	if stop := activity(&strings.Builder{}, "x", func() string { return "" }); stop == nil {
		t.Fatal("no stop for a writer that is not a terminal")
	} else {
		stop()
	}
}
