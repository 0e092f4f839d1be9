package main

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/accounting/heapcheck"
	"github.com/qinsaudit/qinsaudit/report"
)

// crosscheckFlags are the flags of the crosscheck command.
type crosscheckFlags struct {
	out        *outputFlags
	audit      *auditFlags
	heap, base string
	compareFlags
}

func newCrosscheckCmd(stdout io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "crosscheck PATH... --heap PROFILE",
		Short: "Reconcile a heap profile of your own decode pass with the accounting and your claims",
		Long: `crosscheck reads a heap profile of a process that loaded (and perhaps decoded)
the model at PATH: a Go profile.proto, a gperftools/tcmalloc heap profile
(HEAPPROFILE dumps or tcmalloc's sampled heap) or a jemalloc prof.dump. It
measures the bytes in use (less a --heap-base profile taken before the weights
were loaded, restricted to --focus stacks), un-sampling sampled profiles, and
compares them with the accounting and with the sizes your own script claimed.

A PyTorch profile is attributed by default: stacks through c10's CPU
allocator (libc10) are the tensors, the rest is shown apart.

Verdicts: consistent; the named causes runtime-holds-decoded-copies,
runtime-holds-second-copy, runtime-holds-widened-weights and
runtime-holds-optimizer-state (explained); inconclusive (a sampled profile
too coarse to tell the explanations apart: the message gives the sampling
rate that would); claim-disagrees and unexplained-difference, which exit 3
like a failed CI gate. Explained and inconclusive outcomes exit 0 unless
--max-heap-over-stored is exceeded. qinsaudit profile takes the profiles for
you; see docs/heap-recipe.md.`,
		Example: `  qinsaudit crosscheck fixtures/torch/toy_qins_log.pt \
    --heap fixtures/heap/tcmalloc-cache-after-load.heap.gz \
    --heap-base fixtures/heap/tcmalloc-cache-after-import.heap.gz --claim weights=0.41MB`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("crosscheck: no model files given (try: qinsaudit crosscheck fixtures/torch/toy_qins_log.pt --heap PROFILE)")
			}
			return nil
		},
	}
	f := &crosscheckFlags{out: addOutputFlags(c), audit: addAuditFlags(c)}
	fl := c.Flags()
	fl.StringVar(&f.heap, "heap", "", "heap `PROFILE` of the process to measure: profile.proto, gperftools/tcmalloc or jemalloc heap_v2, gzipped or not")
	fl.StringVar(&f.base, "heap-base", "", "heap `PROFILE` of the same process taken before the weights were loaded, subtracted from --heap")
	deprecatedAlias(c, "base", "heap-base")
	f.compareFlags.add(fl, "count only stacks with a frame whose function or library matches `REGEX` (e.g. libc10)",
		"fail when the heap in use exceeds this multiple of the stored bytes (0: no budget)",
		"fraction of an expected figure allowed for stray allocations, besides the sampling error and size classes (default 0.01 attributed to libc10, else 0.03)")
	c.RunE = func(c *cobra.Command, args []string) error {
		claims, focus, err := f.validate()
		if err != nil {
			return err
		}
		return runCrosscheck(stdout, args, f, claims, focus)
	}
	return c
}

// validate checks the flags and parses the --claim values and --focus.
func (f *crosscheckFlags) validate() ([]accounting.Claim, *regexp.Regexp, error) {
	if err := f.out.validate(); err != nil {
		return nil, nil, err
	}
	if f.heap == "" {
		return nil, nil, usageErrorf("crosscheck: --heap PROFILE is required (a heap profile of your decode pass; see docs/heap-recipe.md)")
	}
	return f.compareFlags.parse("crosscheck")
}

// compareFlags are the flags of a comparison of a heap with the
// accounting, which crosscheck and profile share.
type compareFlags struct {
	focus      string
	claims     []string
	claimsFile string
	maxOver    float64
	tolerance  float64
	widen      bool
}

// add defines the flags on fl, with the command's own help for --focus,
// --max-heap-over-stored and --tolerance.
func (f *compareFlags) add(fl *pflag.FlagSet, focusHelp, maxOverHelp, toleranceHelp string) {
	fl.StringVar(&f.focus, "focus", "", focusHelp)
	fl.StringArrayVar(&f.claims, "claim", nil, "a size your script reported, as `NAME=SIZE` (0.41MB, 9.4MiB, 9838736); repeatable")
	fl.StringVar(&f.claimsFile, "claims", "", "JSON `FILE` of claims: {\"name\": \"0.41MB\" or bytes, ...}")
	fl.Float64Var(&f.maxOver, "max-heap-over-stored", 0, maxOverHelp)
	fl.Float64Var(&f.tolerance, "tolerance", 0, toleranceHelp)
	fl.BoolVar(&f.widen, "widen", false, "count float16/bfloat16 weights as decoded to float32 (by default a runtime holds them as stored)")
}

// parse checks the flags and parses the --claim values and --focus; cmd
// names the command in the errors.
func (f *compareFlags) parse(cmd string) ([]accounting.Claim, *regexp.Regexp, error) {
	switch {
	case !(f.maxOver >= 0) || math.IsInf(f.maxOver, 0):
		return nil, nil, usageErrorf("%s: --max-heap-over-stored must be 0 (none) or a positive ratio, not %v", cmd, f.maxOver)
	case !(f.tolerance >= 0 && f.tolerance < 1):
		return nil, nil, usageErrorf("%s: --tolerance must be a fraction between 0 and 1, not %v", cmd, f.tolerance)
	}
	var focus *regexp.Regexp
	if f.focus != "" {
		var err error
		if focus, err = regexp.Compile(f.focus); err != nil {
			return nil, nil, usageErrorf("%s: --focus: %v", cmd, err)
		}
	}
	var claims []accounting.Claim
	for _, s := range f.claims {
		c, err := heapcheck.ParseClaim(s)
		if err != nil {
			return nil, nil, usageErrorf("%s: --claim: %v", cmd, err)
		}
		claims = append(claims, c)
	}
	return claims, focus, nil
}

// withClaimsFile adds the claims of the --claims file to claims.
func (f *compareFlags) withClaimsFile(claims []accounting.Claim) ([]accounting.Claim, error) {
	if f.claimsFile == "" {
		return claims, nil
	}
	more, err := heapcheck.ReadClaims(f.claimsFile)
	if err != nil {
		return nil, badInput(err)
	}
	return append(claims, more...), nil
}

// options are the comparison's options the flags set.
func (f *compareFlags) options() accounting.CompareOptions {
	return accounting.CompareOptions{RelTolerance: f.tolerance, MaxHeapOverStored: f.maxOver, Widen: f.widen}
}

func runCrosscheck(stdout io.Writer, paths []string, f *crosscheckFlags, claims []accounting.Claim, focus *regexp.Regexp) error {
	res, rem, err := auditResult(paths, f.audit, false)
	if err != nil {
		return err
	}
	if claims, err = f.withClaimsFile(claims); err != nil {
		return err
	}
	_, cc, err := compareHeap(res, f.heap, f.base, focus, claims, f.options())
	if err != nil {
		return err
	}
	rep := report.Build(res, report.Parts{Findings: cc.Findings, Comparisons: cc.Comparisons, Remote: rem})
	if err := f.out.write(stdout, rep); err != nil {
		return err
	}

	var failed []string
	for _, c := range cc.Failures() {
		failed = append(failed, fmt.Sprintf("%s: %s", c.Subject, c.Verdict))
	}
	if cc.OverBudget != "" {
		failed = append(failed, cc.OverBudget)
	}
	if len(failed) > 0 {
		return gateFailed(fmt.Errorf("crosscheck: %s", strings.Join(failed, "; ")))
	}
	return nil
}

// compareHeap reads a heap profile (less a base profile, restricted to the
// focus) and compares it with the accounting and the claims. crosscheck and
// check --heap share it.
func compareHeap(res *accounting.Result, path, basePath string, focus *regexp.Regexp, claims []accounting.Claim,
	opts accounting.CompareOptions) (accounting.HeapMeasurement, *accounting.Crosscheck, error) {
	var hm accounting.HeapMeasurement
	prof, err := heapcheck.Read(path)
	if err != nil {
		return hm, nil, badInput(err)
	}
	var base *heapcheck.Profile
	if basePath != "" {
		if base, err = heapcheck.Read(basePath); err != nil {
			return hm, nil, badInput(err)
		}
	}
	if hm, err = heapcheck.Measure(prof, base, focus); err != nil {
		return hm, nil, badInput(err)
	}
	return hm, accounting.Compare(res, hm, claims, opts), nil
}
