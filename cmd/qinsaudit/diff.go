package main

import (
	"bufio"
	"io"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/qinsaudit/qinsaudit/internal/remote"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
	"github.com/qinsaudit/qinsaudit/report"
)

func newDiffCmd(stdout io.Writer) *cobra.Command {
	c := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Compare two models or saved reports side by side",
		Long: `diff compares OLD and NEW, each a model (file, index or directory) or a JSON
report saved by 'qinsaudit audit --format json', in any mix. Rows are keyed by
role, layer, module or tensor name (--by), so re-sharding changes nothing;
they show stored bytes old, new, delta and delta %, largest change first, with
a total row. Added rows say "new", removed rows "removed", unchanged "~".`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErrorf("diff: want OLD and NEW, got %d arguments", len(args))
			}
			return nil
		},
	}
	format := formatFlag(true)
	by := newEnum("role", report.DiffByValues...)
	f := c.Flags()
	enumVar(c, format, "format", "output format")
	enumVar(c, by, "by", "key rows by (role-matched: an encoded linear's weight matched with its float form on the other side)")
	top := f.Int("top", 0, "show only the N largest changes (0: all)")
	exact := f.Bool("bytes", false, "print exact byte counts instead of KiB/MiB/GiB")
	var wide bool
	var width int
	addWidthFlags(c, &wide, &width)
	af := addAuditFlags(c)
	c.RunE = func(c *cobra.Command, args []string) error {
		if *top < 0 {
			return usageErrorf("--top must be 0 or more, not %d", *top)
		}
		if err := validateWidth(wide, width); err != nil {
			return err
		}
		reps, err := sides(args, af)
		if err != nil {
			return err
		}
		d := report.NewDiff(reps[0], reps[1], report.DiffBy(by.value))
		opts := report.TextOptions{Top: *top, Bytes: *exact, Width: textWidth(stdout, wide, width)}
		return writeFailed(lookupFormat(format.value).diff(stdout, d, reps[0], reps[1], opts))
	}
	return c
}

// sides reads both sides of a diff. Two saved reports are read at once
// (a 100,000-tensor report takes a tenth of a second to read, and there
// are two cores); a model is audited alone, its progress and errors in
// order. Either way the old side's error comes first.
func sides(args []string, af *auditFlags) ([2]*report.Report, error) {
	var reps [2]*report.Report
	if isJSON(args[0]) && isJSON(args[1]) {
		var errs [2]error
		var wg sync.WaitGroup
		wg.Go(func() { reps[1], errs[1] = side(args[1], af) })
		reps[0], errs[0] = side(args[0], af)
		wg.Wait()
		if errs[0] != nil {
			return reps, errs[0]
		}
		return reps, errs[1]
	}
	for i, p := range args {
		var err error
		if reps[i], err = side(p, af); err != nil {
			return reps, err
		}
	}
	return reps, nil
}

// side reads one side of a diff: a saved JSON report (a file whose first
// non-blank byte is '{'; no model format starts so) or a model.
//
// A path that is neither a regular file nor a directory (a FIFO, a device)
// is refused here: reading it could block or never end.
func side(path string, af *auditFlags) (*report.Report, error) {
	if remote.IsRemote(path) {
		return audit([]string{path}, af, false)
	}
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		f, _, err := safeio.OpenRegular(path) // its error names what the path is
		if err != nil {
			return nil, badInput(err)
		}
		f.Close()
	}
	if isJSON(path) {
		rep, err := readReport(path)
		if err != nil {
			return nil, badInput(err)
		}
		return rep, nil
	}
	return audit([]string{path}, af, false)
}

// isJSON reports whether path is a saved report. Only a regular file is
// looked into (a FIFO would block the read); what is
// not one is left to the model loaders to refuse.
func isJSON(path string) bool {
	f, _, err := safeio.OpenRegular(path)
	if err != nil {
		return false
	}
	defer f.Close()
	r := bufio.NewReader(io.LimitReader(f, 1<<20))
	for {
		b, err := r.ReadByte()
		if err != nil {
			return false
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b == '{'
	}
}
