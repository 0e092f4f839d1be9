package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/decode"
	"github.com/qinsaudit/qinsaudit/internal/heapsnap"
	"github.com/qinsaudit/qinsaudit/internal/remote"
	"github.com/qinsaudit/qinsaudit/loaders"
	"github.com/qinsaudit/qinsaudit/report"
)

// decodeFlags are the flags of the decode command.
type decodeFlags struct {
	out           *outputFlags
	cache, stream bool
	forward       bool
	batch         int
	alpha         float64
	dir           string
	maxOver       float64
	timing        bool
	widen         bool
}

func newDecodeCmd(stdout io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "decode PATH...",
		Short: "Decode the weights for real and reconcile exact heap profiles with the accounting",
		Long: `decode loads every tensor of the model at PATH into memory in its stored
dtype, decodes each encoded linear to float32 with its scheme's arithmetic
(QINS log and rational, PyTorch qint8, GPTQ int4; float16 and bfloat16
weights are held as stored unless --widen), and profiles the heap exactly at named phases:
after-load, after each layer, after-decode and end. It reports the heap in
use per role at each phase beside what the accounting expects, and compares
stored bytes, decoded bytes and the peak with the accounting. A difference
no known cause explains exits 3.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("decode: no model files given (try: qinsaudit decode fixtures/torch/toy_qins_log.pt)")
			}
			return nil
		},
	}
	f := &decodeFlags{out: addOutputFlags(c)}
	fl := c.Flags()
	fl.BoolVar(&f.cache, "cache", false, "keep every decoded weight until the pass ends")
	fl.BoolVar(&f.stream, "stream", false, "decode layer by layer into one reused buffer (the default)")
	fl.BoolVar(&f.forward, "forward", false, "multiply each decoded weight with a batch of inputs (a forward pass)")
	fl.IntVar(&f.batch, "batch", 8, "input rows of the forward pass")
	fl.Float64Var(&f.alpha, "alpha", 1, "QINS rational alpha for modules that do not store one")
	fl.StringVarP(&f.dir, "out", "o", "", "write the heap profile of each phase to `DIR` as NN-PHASE.pb.gz")
	fl.Float64Var(&f.maxOver, "max-heap-over-stored", 0, "fail when the peak weights in use exceed this multiple of the stored bytes (0: no budget)")
	fl.BoolVar(&f.timing, "time", false, "print the pass's timing to stderr")
	fl.BoolVar(&f.widen, "widen", false, "decode float16 and bfloat16 weights to float32 too (by default they are held as stored, as runtimes computing in them do)")
	c.RunE = func(c *cobra.Command, args []string) error {
		if err := f.validate(); err != nil {
			return err
		}
		return runDecode(stdout, c.ErrOrStderr(), args, f)
	}
	return c
}

// maxBatch bounds --batch: the forward buffers take batch × (widest weight
// + tallest layer) float32s.
const maxBatch = 4096

func (f *decodeFlags) validate() error {
	if err := f.out.validate(); err != nil {
		return err
	}
	switch {
	case f.cache && f.stream:
		return usageErrorf("decode: --cache and --stream exclude each other")
	case f.batch < 1 || f.batch > maxBatch:
		return usageErrorf("decode: --batch must be from 1 to %d, not %d", maxBatch, f.batch)
	case !(f.alpha > 0) || f.alpha > 1e30:
		return usageErrorf("decode: --alpha must be a positive number, not %v", f.alpha)
	case !(f.maxOver >= 0) || math.IsInf(f.maxOver, 0):
		return usageErrorf("decode: --max-heap-over-stored must be 0 (none) or a positive ratio, not %v", f.maxOver)
	}
	return nil
}

func runDecode(stdout, stderr io.Writer, paths []string, f *decodeFlags) error {
	if f.dir != "" {
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			return badInput(err)
		}
	}
	for _, p := range paths {
		if remote.IsRemote(p) {
			return usageErrorf("decode: %s: decode reads local files only (it reads every weight); download the model first, e.g. with `hf download`", p)
		}
	}
	m, err := loaders.Open(paths...)
	if err != nil {
		return badInput(err)
	}
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		return badInput(err)
	}
	snap := &heapsnap.Recorder{Dir: f.dir, Site: decode.Site, Inputs: inputs(paths, m)}
	opts := decode.Options{Alpha: float32(f.alpha), Measure: snap.Take, Widen: f.widen,
		LoadProgress: progress(stderr, "loading weights", accounting.ByteSize),
		Progress:     progress(stderr, "decoding weights", accounting.Comma)}
	if f.cache {
		opts.Policy = decode.Cache
	}
	if f.forward {
		opts.Batch = f.batch
	}
	st, err := runPass(m, res, opts)
	if err != nil {
		return err
	}
	rec := decode.Reconcile(res, st, f.maxOver)
	rep := report.Build(res, report.Parts{Findings: rec.Findings, Phases: rec.Phases, Comparisons: rec.Comparisons})
	if f.timing {
		fmt.Fprintf(stderr, "decoded %s weights of %d tensors (%s) in %v: %.0f M weights/s on %d goroutines; load %v, forward %v\n",
			accounting.Comma(st.Weights), st.Units, st.Policy, st.Decode.Round(time.Microsecond), st.WeightsPerSecond()/1e6,
			st.Workers, st.Load.Round(time.Microsecond), st.Forward.Round(time.Microsecond))
	}
	if err := f.out.write(stdout, rep); err != nil {
		return err
	}
	if failed := rec.Failures(); len(failed) > 0 {
		return gateFailed(fmt.Errorf("decode: %s", strings.Join(failed, "; ")))
	}
	return nil
}

// inputs are the files a decode run reads, for -o never to write over one.
func inputs(paths []string, m *accounting.Model) []os.FileInfo {
	var out []os.FileInfo
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			out = append(out, fi)
		}
	}
	for _, f := range m.Files {
		if fi, err := os.Stat(f.Path); err == nil {
			out = append(out, fi)
		}
	}
	return out
}

// runPass loads the model and runs the pass under exact heap profiling,
// which starts once the model is opened and audited: every buffer the pass
// measures is allocated after it, so each one is in the profile with its
// exact size, while the loader's garbage is collected as it is made instead
// of piling up with collection off, and the loader runs at Go's default
// sampling rate and its speed. Only this command changes the rate.
func runPass(m *accounting.Model, res *accounting.Result, opts decode.Options) (*decode.Stats, error) {
	collectNormally()
	defer heapsnap.Exact()()
	pass, err := decode.Load(m, res, opts)
	if err != nil {
		return nil, badInput(err)
	}
	return pass.Run()
}
