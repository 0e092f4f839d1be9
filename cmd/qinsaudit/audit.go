package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/accounting/rules"
	"github.com/qinsaudit/qinsaudit/report"
)

// outputFlags are the rendering flags every reporting command shares.
type outputFlags struct {
	format *enumFlag
	by     *enumFlag
	sort   *enumFlag
	top    int
	bytes  bool
	wide   bool
	width  int
}

func addOutputFlags(c *cobra.Command) *outputFlags {
	o := &outputFlags{
		format: formatFlag(false),
		by:     newEnum("role", report.ByValues...),
		sort:   newEnum("", append([]string{""}, report.SortValues...)...),
	}
	f := c.Flags()
	enumVar(c, o.format, "format", "output format")
	enumVar(c, o.by, "by", "detail table (role: the summary only)")
	enumVar(c, o.sort, "sort", "order detail rows by (default: file order)")
	f.IntVar(&o.top, "top", 0, "show only the first N detail rows (0: all)")
	f.BoolVar(&o.bytes, "bytes", false, "print exact byte counts instead of KiB/MiB/GiB")
	addWidthFlags(c, &o.wide, &o.width)
	return o
}

// addWidthFlags defines --wide, which lets text tables be as wide as their
// cells, and --width, which fits them to a given width.
func addWidthFlags(c *cobra.Command, wide *bool, width *int) {
	c.Flags().BoolVar(wide, "wide", false, "do not fit text tables to the terminal's width (or to 100 columns when not a terminal)")
	c.Flags().IntVar(width, "width", 0, "fit text tables to N columns (default: the terminal's width, or 100 when not a terminal)")
}

// validateWidth refuses a --width too narrow for any table, or given with
// --wide.
func validateWidth(wide bool, width int) error {
	if wide && width != 0 {
		return usageErrorf("--wide and --width %d contradict each other: give one", width)
	}
	if width != 0 && width < minWidth {
		return usageErrorf("--width must be at least %d, not %d", minWidth, width)
	}
	return nil
}

// minWidth is the narrowest --width: narrower, no table is readable.
const minWidth = 40

// defaultWidth is the width text tables fit when stdout is not a terminal:
// a log, a pipe, a CI job's output.
const defaultWidth = 100

// textWidth is the width text tables fit on w: width if set, else the
// terminal's when w is one, defaultWidth otherwise; 0 (no limit) with
// --wide.
func textWidth(w io.Writer, wide bool, width int) int {
	if wide {
		return 0
	}
	if width > 0 {
		return width
	}
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return defaultWidth
}

func (o *outputFlags) validate() error {
	if o.top < 0 {
		return usageErrorf("--top must be 0 or more, not %d", o.top)
	}
	return validateWidth(o.wide, o.width)
}

// summary reports whether the chosen output shows neither tensors nor
// modules (the text and Markdown tables without --by tensor or module), so
// that the audit need not make them (report.Report.Summary).
func (o *outputFlags) summary() bool {
	f := o.format.value
	return (f == "text" || f == "markdown") && !report.By(o.by.value).Lists()
}

// write renders rep in the chosen format; a failure to write it (a full
// disk, a closed pipe) exits 1.
func (o *outputFlags) write(w io.Writer, rep *report.Report) error {
	opts := report.TextOptions{By: report.By(o.by.value), Sort: report.SortKey(o.sort.value), Top: o.top, Bytes: o.bytes, Width: textWidth(w, o.wide, o.width)}
	return writeFailed(lookupFormat(o.format.value).report(w, rep, opts))
}

func newAuditCmd(stdout io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "audit PATH...",
		Short: "Account for every tensor's bytes in model files",
		Long: `audit reads each PATH (a model file, a weights index, or a directory, read
as transformers would load it) header-only and reports, per role and in
total, the logical parameters, the baseline size, the theoretical size and
the bytes stored, with findings such as encoded layers still stored as
float32. Several paths give one report over all their files; one part of a
split GGUF model brings in the others.

A PATH may also be a remote model, read header-only over HTTP range
requests: hf://ORG/REPO[@REV][/PATH], a https://huggingface.co/ORG/REPO/...
address, or any https:// URL of a model file (see docs/usage.md, "Remote
models"). HF_ENDPOINT names a mirror; HF_TOKEN (or $HF_HOME/token) a token.`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("audit: no model files given (try: qinsaudit audit fixtures/torch/toy_qins_log.pt)")
			}
			return nil
		},
	}
	out := addOutputFlags(c)
	af := addAuditFlags(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if err := out.validate(); err != nil {
			return err
		}
		rep, err := audit(args, af, out.summary())
		if err != nil {
			return err
		}
		return out.write(stdout, rep)
	}
	return c
}

// auditFlags are the flags that change what an audit counts, and how a
// remote model is read.
type auditFlags struct {
	baseline *enumFlag
	rules    string
	noCache  bool
	cmd      *cobra.Command // whose stderr shows the progress of a long read
}

// stderr is where the progress of a read goes (nowhere without a command).
func (a *auditFlags) stderr() io.Writer {
	if a.cmd == nil {
		return io.Discard
	}
	return a.cmd.ErrOrStderr()
}

func addAuditFlags(c *cobra.Command) *auditFlags {
	a := &auditFlags{baseline: newEnum("fp32", "fp32", "fp16", "bf16"), cmd: c}
	enumVar(c, a.baseline, "baseline", "reference dtype of an uncompressed weight")
	c.Flags().StringVar(&a.rules, "rules", "", "YAML file of extra encoding schemes for in-house codecs (see docs/accounting.md)")
	c.MarkFlagFilename("rules", "yaml", "yml")
	c.Flags().BoolVar(&a.noCache, "no-cache", false, "for a remote model (hf://, https://): neither read nor write the header cache")
	return a
}

var baselineDTypes = map[string]string{"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

// audit loads and accounts for the model at paths; a summary report
// (report.Report.Summary) leaves out the lists by tensor and by module.
func audit(paths []string, af *auditFlags, summary bool) (*report.Report, error) {
	res, rem, err := auditResult(paths, af, summary)
	if err != nil {
		return nil, err
	}
	return report.Build(res, report.Parts{Remote: rem}), nil
}

// auditResult is audit before it becomes a report, with the remote block
// of a remote model (nil for local files); a summary has no module groups
// (accounting.Options.Summary).
func auditResult(paths []string, af *auditFlags, summary bool) (*accounting.Result, *report.Remote, error) {
	opts := accounting.Options{Baseline: baselineDTypes[af.baseline.value], Summary: summary}
	if af.rules != "" {
		var err error
		if opts.Schemes, err = rules.Load(af.rules); err != nil {
			return nil, nil, badInput(err)
		}
	}
	m, rem, err := openModel(paths, af)
	if err != nil {
		return nil, nil, err
	}
	res, err := accounting.Audit(m, opts)
	if err != nil {
		return nil, nil, badInput(err)
	}
	return res, rem, nil
}
