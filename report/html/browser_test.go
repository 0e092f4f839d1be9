package html_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	cdpperf "github.com/chromedp/cdproto/performance"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/qinsaudit/qinsaudit/report"
	htmlreport "github.com/qinsaudit/qinsaudit/report/html"
)

var update = flag.Bool("update", false, "rewrite docs/img/treemap-toy.png from the browser test")

// browser starts headless Chromium (Debian's chromium, which .ci/run
// installs) and returns a context for its first tab. The test skips only
// when chromium is missing outside CI.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("chromium is not installed (CI installs it and runs this test)")
		}
		t.Fatal("chromium is not installed; .ci/run installs it with apt-get")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1100, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// visit opens the page in a new tab from a file URL and fails t on any
// console error, script exception or request other than the page itself.
func visit(t *testing.T, bctx context.Context, page []byte) context.Context {
	t.Helper()
	ctx, problems := open(t, bctx, page)
	t.Cleanup(func() {
		for _, p := range problems() {
			t.Errorf("%s", p)
		}
	})
	return ctx
}

// open opens the page and returns what went wrong in it so far.
func open(t *testing.T, bctx context.Context, page []byte) (context.Context, func() []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "page.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: path}).String()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel)
	var mu sync.Mutex
	var problems []string
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, fmt.Sprint(a.Value, a.Description))
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			problems = append(problems, fmt.Sprintf("exception: %s at %d:%d %v", d.Text, d.LineNumber, d.ColumnNumber, d.Exception))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			if ev.Request.URL != u {
				problems = append(problems, "request: "+ev.Request.URL)
			}
		}
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.ID("tm"))); err != nil {
		t.Fatalf("loading %s: %v", u, err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// TestBrowserCatches checks that the checks of visit can fail: a page that
// fetches, logs an error and throws is caught on each count.
func TestBrowserCatches(t *testing.T) {
	bctx := browser(t)
	bad := []byte(`<!DOCTYPE html><html><body><svg id="tm" width="10" height="10"><rect width="10" height="10"/></svg>
<img src="http://127.0.0.1:9/x.png"><script>console.error("boom"); null.x;</script></body></html>`)
	ctx, problems := open(t, bctx, bad)
	var req, logged, thrown bool
	for range 50 {
		for _, p := range problems() {
			req = req || strings.HasPrefix(p, "request: http://127.0.0.1:9/")
			logged = logged || strings.Contains(p, "boom")
			thrown = thrown || strings.HasPrefix(p, "exception: ")
		}
		if req && logged && thrown {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !req || !logged || !thrown {
		t.Errorf("request %v, console error %v, exception %v caught: %q", req, logged, thrown, problems())
	}
	_ = ctx
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, id string) []byte {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID(id)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// largestJS finds the largest tensor rectangle drawn, relative to the map.
const largestJS = `(() => {
  const tm = document.getElementById("tm").getBoundingClientRect();
  let best = null, area = 0;
  for (const r of document.querySelectorAll("#tm rect.t")) {
    const b = r.getBoundingClientRect();
    if (b.width * b.height > area) { area = b.width * b.height; best = {j: r.dataset.j || "", x: b.left - tm.left + b.width / 2, y: b.top - tm.top + b.height / 2, area: area, fill: r.getAttribute("fill"), mapWidth: tm.width}; }
  }
  return best;
})()`

type rectInfo struct {
	J        string  `json:"j"`
	X        float64 `json:"x"`
	Y        float64 `json:"y"`
	Area     float64 `json:"area"`
	Fill     string  `json:"fill"`
	MapWidth float64 `json:"mapWidth"`
}

func TestBrowserToy(t *testing.T) {
	bctx := browser(t)
	rep := audit(t, toy)
	ctx := visit(t, bctx, page(t, rep))

	// The treemap is drawn: the screenshot shows the largest rectangle, the
	// embedding, in its colour, and many colours besides the background.
	big := eval[rectInfo](t, ctx, largestJS)
	if big.J != "report.tensors.0" || rep.Tensors[0].Name != "embed.weight" {
		t.Fatalf("largest rectangle %+v, want the embedding", big)
	}
	shot := screenshot(t, ctx, "tm")
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	scale := float64(img.Bounds().Dx()) / big.MapWidth
	var want [3]int
	fmt.Sscanf(big.Fill, "#%02x%02x%02x", &want[0], &want[1], &want[2])
	r, g, b, _ := img.At(int(big.X*scale), int(big.Y*scale)).RGBA()
	if got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}; !near(got, want) {
		t.Errorf("embedding's centre is %v on screen, its fill %v", got, want)
	}
	if n, blank := colours(img); n < 4 || blank > 0.1 {
		t.Errorf("treemap screenshot has %d colours, %.0f%% background", n, 100*blank)
	}
	if *update {
		section := screenshot(t, ctx, "treemap")
		if err := os.WriteFile("../../docs/img/treemap-toy.png", section, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Switching the size domain redraws at other sizes: the embedding is
	// 5,120,000 of 9,838,736 bytes stored, of 14,557,184 at the baseline.
	run(t, ctx, chromedp.Click(chromedp.ID("dom-baseline")))
	if d := eval[string](t, ctx, `[...document.querySelectorAll("#tm g.dom")].filter(g => getComputedStyle(g).display !== "none").map(g => g.dataset.domain).join(",")`); d != "baseline" {
		t.Errorf("after choosing baseline, the domains shown are %q", d)
	}
	base := eval[rectInfo](t, ctx, largestJS)
	if ratio := base.Area / big.Area; base.J != big.J || ratio < 0.6 || ratio > 0.75 {
		t.Errorf("baseline embedding %+v is %.2f of its stored area, want about %.2f", base, ratio, 9838736.0/14557184)
	}

	// Zoom: a click on a tensor zooms into its role, then its layer, and
	// back out.
	crumb := func() string { return eval[string](t, ctx, `document.getElementById("crumb").textContent`) }
	q := `.dom-baseline rect[data-j="report.tensors.1"]`
	run(t, ctx, chromedp.Click(chromedp.CSS(q)))
	if c := crumb(); c != "role encoded_linear" {
		t.Errorf("after one click the crumb is %q", c)
	}
	if eval[bool](t, ctx, `(() => {
	  const q = '.dom-baseline rect[data-j="report.tensors.0"]', b = document.querySelector(q).getBoundingClientRect();
	  const e = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
	  return !!e && e.matches(q);
	})()`) {
		t.Error("the embedding is still shown when zoomed into encoded_linear")
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(q)))
	if c := crumb(); c != "role encoded_linear › layer blocks.0" {
		t.Errorf("after two clicks the crumb is %q", c)
	}
	if labels := eval[int](t, ctx, `document.querySelectorAll("#tm .zl text").length`); labels == 0 {
		t.Error("no labels drawn in the zoomed layer")
	}
	run(t, ctx, chromedp.Click(chromedp.ID("zoom-out")))
	if c := crumb(); c != "role encoded_linear" {
		t.Errorf("after zoom out the crumb is %q", c)
	}

	// Keyboard: focus the map, move with the arrows; the tooltip says what
	// the focused tensor is, with exact bytes.
	run(t, ctx, chromedp.Click(chromedp.ID("zoom-out")), chromedp.Focus(chromedp.ID("tm")), chromedp.KeyEvent(kb.ArrowRight))
	tip := eval[string](t, ctx, `(() => { const t = document.getElementById("tip"); return t.hidden ? "" : t.textContent; })()`)
	if !strings.Contains(tip, "stored: ") || !strings.Contains(tip, " B)") {
		t.Errorf("tooltip after an arrow key: %q", tip)
	}
	run(t, ctx, chromedp.KeyEvent(kb.Enter))
	if c := crumb(); c == "whole model" {
		t.Error("Enter did not zoom")
	}
	run(t, ctx, chromedp.KeyEvent(kb.Escape))
	if c := crumb(); c != "whole model" {
		t.Errorf("Escape left the crumb %q", c)
	}

	// Findings: "show on map" highlights the module.
	run(t, ctx, chromedp.Click(chromedp.CSS("#findings button.sel")))
	if n := eval[int](t, ctx, `document.querySelectorAll("#tm g.module.hl").length`); n == 0 {
		t.Error("selecting a finding highlights no module")
	}
}

func TestBrowserThousandTensors(t *testing.T) {
	bctx := browser(t)
	ctx := visit(t, bctx, page(t, manyTensors(t, 112)))
	if n := eval[int](t, ctx, visibleRects); n < 100 {
		t.Errorf("%d rectangles drawn for 1,008 tensors", n)
	}
	// Merged rectangles draw their members when zoomed into.
	n := eval[int](t, ctx, `(() => {
	  const m = [...document.querySelectorAll("#tm rect.m")].find(r => r.getBoundingClientRect().width > 0);
	  if (!m) return -1;
	  qinsaudit.zoom(m);
	  return document.querySelectorAll("#tm rect.p").length;
	})()`)
	if n == 0 {
		t.Error("zooming into a merged rectangle draws none of its members")
	}
}

const visibleRects = `[...document.querySelectorAll("#tm rect.t")].filter(r => r.getBoundingClientRect().width > 0).length`

func TestBrowserDiff(t *testing.T) {
	bctx := browser(t)
	old, new := audit(t, "../../fixtures/torch/toy_fp32.pt"), audit(t, toy)
	var buf bytes.Buffer
	if err := htmlreport.WriteDiff(&buf, report.NewDiff(old, new, "role"), old, new); err != nil {
		t.Fatal(err)
	}
	ctx := visit(t, bctx, buf.Bytes())
	if n := eval[int](t, ctx, visibleRects); n < 10 {
		t.Errorf("%d rectangles drawn in the diff", n)
	}
	// The encoded linears shrank by half: blue, not "new", though every
	// tensor name of theirs is new.
	if c := eval[string](t, ctx, `(() => {
	  const half = document.querySelectorAll("svg.legend rect")[1].getAttribute("fill"); // the −50% swatch
	  const r = [...document.querySelectorAll(".dom-new rect.t")].find(r => r.dataset.m === "blocks.0.attn.q");
	  return r.getAttribute("fill") + " " + half;
	})()`); c[:7] != c[8:] {
		t.Errorf("blocks.0.attn.q's tensors are %s, the legend's −50%% is %s", c[:7], c[8:])
	}
	run(t, ctx, chromedp.Click(chromedp.ID("dom-old")))
	if n := eval[int](t, ctx, visibleRects); n < 10 {
		t.Errorf("%d rectangles drawn in the old model", n)
	}
}

// BenchmarkBrowserLayout100k loads the page of 100,008 tensors and reports
// when the browser first paints it (paint-ms), has read the file (read-ms),
// has parsed it (parsed-ms) and has laid it out with the script started
// (load-ms), and how long a zoom into the largest merged rectangle takes;
// and, as CPU time of the page's main thread, which the load of the machine
// does not inflate, the style and layout (layout-cpu-ms) and all its tasks
// until then (main-thread-cpu-ms).
func BenchmarkBrowserLayout100k(b *testing.B) {
	rep, err := hundredThousand()
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := htmlreport.Write(&buf, rep); err != nil {
		b.Fatal(err)
	}
	bctx := browser(b)
	path := filepath.Join(b.TempDir(), "page.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: path}).String()
	var load, zoom, read, parsed, paint, layoutCPU, taskCPU float64
	for b.Loop() {
		layoutCPU = 0
		ctx, cancel := chromedp.NewContext(bctx)
		// Durations in thread time: CPU spent on the page's main thread,
		// whatever else the machine runs.
		_, err := chromedp.Call(ctx, cdpperf.Enable, cdpperf.EnableParams{TimeDomain: cdpperf.EnableTimeDomainThreadTicks})
		if err == nil {
			err = chromedp.Do(ctx, chromedp.Navigate(u))
		}
		if err == nil {
			load, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`document.body.offsetHeight; performance.now()`))
		}
		if err == nil {
			var m cdpperf.GetMetricsResult
			m, err = chromedp.Call(ctx, cdpperf.GetMetrics, cdp.Empty{})
			for _, x := range m.Metrics {
				switch x.Name {
				case "LayoutDuration", "RecalcStyleDuration":
					layoutCPU += 1000 * x.Value
				case "TaskDuration":
					taskCPU = 1000 * x.Value
				}
			}
		}
		if err == nil {
			var phases []float64
			phases, err = chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => { const n = performance.getEntriesByType("navigation")[0];
			  const p = performance.getEntriesByName("first-contentful-paint")[0];
			  return [n.responseEnd, n.domInteractive, p ? p.startTime : -1]; })()`))
			if err == nil {
				read, parsed, paint = phases[0], phases[1], phases[2]
			}
		}
		if err == nil {
			zoom, err = chromedp.Run(ctx, chromedp.Evaluate[float64](`(() => {
			  const area = r => r.getAttribute("width") * r.getAttribute("height");
			  const m = [...document.querySelectorAll("#tm .dom-stored rect.m")].reduce((a, r) => !a || area(r) > area(a) ? r : a, null);
			  const t0 = performance.now();
			  if (m) qinsaudit.zoom(m);
			  document.getElementById("tm").getBoundingClientRect();
			  return performance.now() - t0; })()`))
		}
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(read, "read-ms")
	b.ReportMetric(parsed, "parsed-ms")
	b.ReportMetric(paint, "paint-ms")
	b.ReportMetric(load, "load-ms")
	b.ReportMetric(layoutCPU, "layout-cpu-ms")
	b.ReportMetric(taskCPU, "main-thread-cpu-ms")
	b.ReportMetric(zoom, "zoom-ms")
	b.ReportMetric(float64(buf.Len())/(1<<20), "MiB")
}

func near(a, b [3]int) bool {
	for i := range a {
		if d := a[i] - b[i]; d > 8 || d < -8 {
			return false
		}
	}
	return true
}

// colours counts the distinct colours of img and the share of its pixels
// in the map's background colour.
func colours(img image.Image) (int, float64) {
	seen := map[[3]uint32]bool{}
	bg, all := 0, 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y += 2 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			c := [3]uint32{r >> 8, g >> 8, b >> 8}
			seen[c] = true
			if c == [3]uint32{0xf7, 0xf7, 0xf7} {
				bg++
			}
			all++
		}
	}
	return len(seen), float64(bg) / float64(all)
}
