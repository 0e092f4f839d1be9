package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/report"
	"github.com/qinsaudit/qinsaudit/report/gate"
)

// now is the clock waivers expire by; tests set it.
var now = time.Now

func newCheckCmd(stdout io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "check PATH...",
		Short: "Fail when a model breaks its budgets or regresses against a saved report",
		Long: `check audits PATH like audit does, then applies a gate: budgets per role,
module or layer (minimum ratio, maximum bits per weight, maximum stored bytes),
findings that must not appear, and growth against a saved report (--against).
Budgets come from --config (qinsaudit.yaml or .toml) and from flags; flags add
to the config. The gate decides the exit code whatever the output format:
0 passed, 3 failed, 1 bad input, 2 usage error.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("check: no model files given")
			}
			return nil
		},
	}
	f := &checkFlags{out: addOutputFlags(c), audit: addAuditFlags(c)}
	fl := c.Flags()
	fl.StringVar(&f.config, "config", "", "budgets file, YAML (.yaml) or TOML (.toml); default: qinsaudit.yaml, .yml or .toml in the working directory, if there is one")
	fl.StringArrayVar(&f.minRatio, "min-ratio", nil, "ROLE=X: the role's baseline/stored ratio must be at least X (ROLE may be total); repeatable")
	fl.StringArrayVar(&f.maxBits, "max-bits-per-weight", nil, "ROLE=X: the role's stored bits per weight must be at most X; repeatable")
	fl.StringArrayVar(&f.maxStored, "max-stored", nil, "ROLE=SIZE: the role's stored bytes must be at most SIZE (e.g. 4.5MiB); repeatable")
	fl.StringArrayVar(&f.forbid, "forbid", nil, "a finding kind that must not appear (e.g. encoded-but-uncompressed); repeatable")
	fl.StringArrayVar(&f.allow, "allow-finding", nil, "KIND[=REASON]: let error findings of KIND pass the gate (every other error finding fails it); repeatable")
	fl.StringVar(&f.against, "against", "", "a saved JSON report to compare with (qinsaudit audit --format json)")
	fl.StringVar(&f.maxGrowth, "max-growth", "", "with --against: relative growth of stored bytes allowed per module and in total (e.g. 1%)")
	fl.StringVar(&f.maxGrowthBytes, "max-growth-bytes", "", "with --against: absolute growth allowed (e.g. 64KiB)")
	fl.StringVar(&f.ignoreBelow, "ignore-below", "", "with --against: ignore changes of fewer bytes than this")
	fl.BoolVar(&f.updateAgainst, "update-against", false, "with --against: write this report over the --against file when nothing grew (a ratchet)")
	deprecatedAlias(c, "update-baseline", "update-against")
	fl.StringVar(&f.heap, "heap", "", "a heap PROFILE of a process that loaded the model (see crosscheck): its verdicts join the gate")
	fl.StringVar(&f.heapBase, "heap-base", "", "with --heap: a PROFILE taken before the weights were loaded, subtracted")
	c.MarkFlagFilename("config", "yaml", "yml", "toml")
	c.MarkFlagFilename("against", "json")
	fl.Float64Var(&f.maxHeap, "max-heap-over-stored", 0, "with --heap: fail when the heap in use exceeds this multiple of the stored bytes")

	c.RunE = func(c *cobra.Command, args []string) error {
		cfg, err := f.validate()
		if err != nil {
			return err
		}
		return runCheck(stdout, c.ErrOrStderr(), args, f, cfg)
	}
	return c
}

// checkFlags are the flags of the check command.
type checkFlags struct {
	out                          *outputFlags
	audit                        *auditFlags
	config                       string
	minRatio, maxBits, maxStored []string
	forbid, allow                []string
	against, maxGrowth           string
	maxGrowthBytes, ignoreBelow  string
	updateAgainst                bool
	heap, heapBase               string
	maxHeap                      float64
}

// validate checks the flags and makes the gate's config: the --config file
// (or the one defaultConfig finds) with the budgets of the flags added.
func (f *checkFlags) validate() (*gate.Config, error) {
	if err := f.out.validate(); err != nil {
		return nil, err
	}
	cfg := &gate.Config{}
	if f.config == "" {
		f.config = defaultConfig()
	}
	if f.config != "" {
		var err error
		if cfg, err = gate.Load(f.config); err != nil {
			return nil, badInput(err)
		}
	}
	if err := addFlagBudgets(cfg, f.minRatio, f.maxBits, f.maxStored, f.forbid, f.allow); err != nil {
		return nil, err
	}
	if err := addAgainst(cfg, f.against, f.maxGrowth, f.maxGrowthBytes, f.ignoreBelow); err != nil {
		return nil, err
	}
	if f.maxHeap != 0 {
		if err := gate.CheckLimit("--max-heap-over-stored", f.maxHeap); err != nil {
			return nil, usageErrorf("%v", err)
		}
		cfg.MaxHeapOverStored = &f.maxHeap
	}
	if f.heap == "" && (f.heapBase != "" || f.maxHeap > 0) {
		return nil, usageErrorf("--heap-base and --max-heap-over-stored need --heap")
	}
	if f.updateAgainst && cfg.Against == nil {
		return nil, usageErrorf("--update-against needs --against (or against: in the config)")
	}
	return cfg, nil
}

// runCheck audits the model at paths, measures the --heap profile, reads
// the baseline and builds the report the gate judges.
func runCheck(stdout, stderr io.Writer, paths []string, f *checkFlags, cfg *gate.Config) error {
	// The saved report is read while the model is audited (each takes a
	// few tenths of a second at 100,000 tensors, and there are two
	// cores); its error still comes after the audit's and the heap's.
	var base *report.Report
	var baseErr error
	var reading sync.WaitGroup
	if cfg.Against != nil {
		reading.Go(func() { base, baseErr = readReport(cfg.Against.Report) })
	}
	res, rem, err := auditResult(paths, f.audit, false)
	reading.Wait()
	if err != nil {
		return err
	}
	parts := report.Parts{Remote: rem}
	var hm accounting.HeapMeasurement
	if f.heap != "" {
		var cc *accounting.Crosscheck
		if hm, cc, err = compareHeap(res, f.heap, f.heapBase, nil, nil, accounting.CompareOptions{}); err != nil {
			return err
		}
		parts.Findings, parts.Comparisons = cc.Findings, cc.Comparisons
	}
	if cfg.Against != nil {
		err = baseErr
		if errors.Is(err, os.ErrNotExist) && f.updateAgainst {
			base, err = nil, nil // first run: the baseline is created below
		}
		if err != nil {
			return badInput(err)
		}
	}
	parts.Judge = func(rep *report.Report) *report.Gate {
		var heap *gate.Heap
		if f.heap != "" {
			heap = &gate.Heap{InUseBytes: hm.InUseBytes, StoredBytes: res.Total.StoredBytes, Comparisons: rep.Comparisons}
		}
		g := gate.Evaluate(rep, cfg, base, heap, now())
		g.Config = f.config
		return g
	}
	rep := report.Build(res, parts)
	if err := f.out.write(stdout, rep); err != nil {
		return err
	}
	if f.updateAgainst {
		if err := ratchet(stderr, rep, base, cfg); err != nil {
			return err
		}
	}
	if g := rep.Gate; !g.Passed {
		n := 0
		for _, o := range g.Outcomes {
			if o.Status == report.StatusFail {
				n++
			}
		}
		return gateFailed(fmt.Errorf("gate failed: %d of %d checks failed", n, len(g.Outcomes)))
	}
	return nil
}

// defaultConfigs are the config files check finds in the working directory
// without --config, in this order.
var defaultConfigs = []string{"qinsaudit.yaml", "qinsaudit.yml", "qinsaudit.toml"}

// defaultConfig returns the first of defaultConfigs that is a regular file
// in the working directory, or "".
func defaultConfig() string {
	for _, name := range defaultConfigs {
		if fi, err := os.Stat(name); err == nil && fi.Mode().IsRegular() {
			return name
		}
	}
	return ""
}

// ratchet writes rep (without its gate) over the saved report when nothing
// grew.
func ratchet(stderr io.Writer, rep, base *report.Report, cfg *gate.Config) error {
	if base != nil && gate.Worse(rep, base, cfg.Against) {
		fmt.Fprintf(stderr, "qinsaudit: saved report %s kept: something grew\n", cfg.Against.Report)
		return nil
	}
	saved := *rep
	saved.Gate = nil
	var buf bytes.Buffer
	if err := report.WriteJSON(&buf, &saved); err != nil {
		return err
	}
	if err := os.WriteFile(cfg.Against.Report, buf.Bytes(), 0o644); err != nil {
		return badInput(err)
	}
	what := "updated"
	if base == nil {
		what = "created"
	}
	fmt.Fprintf(stderr, "qinsaudit: saved report %s %s: %d tensors, %d bytes stored\n", cfg.Against.Report, what, len(rep.Tensors), rep.Totals.StoredBytes)
	return nil
}

// readReport reads a saved JSON report, bounded and checked
// (report.ReadFile).
func readReport(path string) (*report.Report, error) { return report.ReadFile(path) }

func addFlagBudgets(cfg *gate.Config, minRatio, maxBits, maxStored, forbid, allow []string) error {
	parse := func(flag, v string) (*gate.Role, string, error) {
		role, val, ok := strings.Cut(v, "=")
		var r gate.Role
		if !ok {
			return nil, "", usageErrorf("--%s %q: want ROLE=VALUE", flag, gate.Clip(v))
		}
		if err := r.UnmarshalText([]byte(role)); err != nil {
			return nil, "", usageErrorf("--%s: %v", flag, err)
		}
		return &r, val, nil
	}
	for _, v := range minRatio {
		r, val, err := parse("min-ratio", v)
		if err != nil {
			return err
		}
		x, perr := strconv.ParseFloat(strings.TrimSuffix(val, "x"), 64)
		if perr != nil {
			return usageErrorf("--min-ratio %q: bad number", gate.Clip(v))
		}
		if err := gate.CheckLimit("--min-ratio", x); err != nil {
			return usageErrorf("%v", err)
		}
		cfg.Budgets = append(cfg.Budgets, gate.Budget{Role: r, MinRatio: &x})
	}
	for _, v := range maxBits {
		r, val, err := parse("max-bits-per-weight", v)
		if err != nil {
			return err
		}
		x, perr := strconv.ParseFloat(val, 64)
		if perr != nil {
			return usageErrorf("--max-bits-per-weight %q: bad number", gate.Clip(v))
		}
		if err := gate.CheckLimit("--max-bits-per-weight", x); err != nil {
			return usageErrorf("%v", err)
		}
		cfg.Budgets = append(cfg.Budgets, gate.Budget{Role: r, MaxBitsPerWeight: &x})
	}
	for _, v := range maxStored {
		r, val, err := parse("max-stored", v)
		if err != nil {
			return err
		}
		n, serr := gate.ParseSize(val)
		if serr != nil {
			return usageErrorf("--max-stored: %v", serr)
		}
		cfg.Budgets = append(cfg.Budgets, gate.Budget{Role: r, MaxStoredBytes: &gate.Size{Bytes: n}})
	}
	for _, v := range forbid {
		var k gate.FindingKind
		if err := k.UnmarshalText([]byte(v)); err != nil {
			return usageErrorf("--forbid: %v", err)
		}
		cfg.ForbidFindings = append(cfg.ForbidFindings, k)
	}
	for _, v := range allow {
		kind, reason, _ := strings.Cut(v, "=")
		var k gate.FindingKind
		if err := k.UnmarshalText([]byte(kind)); err != nil {
			return usageErrorf("--allow-finding: %v", err)
		}
		if reason = strings.TrimSpace(reason); reason == "" {
			reason = "allowed by --allow-finding"
		}
		cfg.AllowFindings = append(cfg.AllowFindings, gate.AllowFinding{Kind: k, Reason: reason})
	}
	return nil
}

func addAgainst(cfg *gate.Config, against, maxGrowth, maxGrowthBytes, ignoreBelow string) error {
	if against == "" {
		if maxGrowth != "" || maxGrowthBytes != "" || ignoreBelow != "" {
			if cfg.Against == nil {
				return usageErrorf("--max-growth, --max-growth-bytes and --ignore-below need --against")
			}
		} else {
			return nil
		}
	}
	if cfg.Against == nil {
		cfg.Against = &gate.Against{}
	}
	if against != "" {
		cfg.Against.Report = against
	}
	if maxGrowth != "" {
		p, err := gate.ParsePercent(maxGrowth)
		if err != nil {
			return usageErrorf("--max-growth: %v", err)
		}
		cfg.Against.MaxGrowth = &gate.Percent{Value: p}
	}
	for _, s := range []struct {
		flag, v string
		dst     **gate.Size
	}{{"max-growth-bytes", maxGrowthBytes, &cfg.Against.MaxGrowthBytes}, {"ignore-below", ignoreBelow, &cfg.Against.IgnoreBelow}} {
		if s.v == "" {
			continue
		}
		n, err := gate.ParseSize(s.v)
		if err != nil {
			return usageErrorf("--%s: %v", s.flag, err)
		}
		*s.dst = &gate.Size{Bytes: n}
	}
	return nil
}
