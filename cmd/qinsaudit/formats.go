package main

import (
	"io"

	"github.com/qinsaudit/qinsaudit/report"
	htmlreport "github.com/qinsaudit/qinsaudit/report/html"
)

// outputFormat is one --format: its name and its renderer of a report and
// of a diff, nil where the format has none.
type outputFormat struct {
	name   string
	report func(w io.Writer, rep *report.Report, opts report.TextOptions) error
	diff   func(w io.Writer, d *report.Diff, old, new *report.Report, opts report.TextOptions) error
}

// outputFormats declares every output format, the default first, and which
// commands take it: audit, check, crosscheck, decode and profile write a
// report, diff writes a diff. Each command's --format choices, its help,
// its validation and its completion derive from this list.
var outputFormats = []outputFormat{
	{"text", report.WriteText,
		func(w io.Writer, d *report.Diff, _, _ *report.Report, opts report.TextOptions) error {
			return report.WriteDiffText(w, d, opts)
		}},
	{"json",
		func(w io.Writer, rep *report.Report, _ report.TextOptions) error { return report.WriteJSON(w, rep) },
		func(w io.Writer, d *report.Diff, _, _ *report.Report, _ report.TextOptions) error {
			return report.WriteDiffJSON(w, d)
		}},
	{"markdown", report.WriteMarkdown,
		func(w io.Writer, d *report.Diff, _, _ *report.Report, opts report.TextOptions) error {
			return report.WriteDiffMarkdown(w, d, opts)
		}},
	{"csv", report.WriteCSV,
		func(w io.Writer, d *report.Diff, _, _ *report.Report, _ report.TextOptions) error {
			return report.WriteDiffCSV(w, d)
		}},
	{"pprof", func(w io.Writer, rep *report.Report, _ report.TextOptions) error { return report.WritePprof(w, rep) }, nil},
	{"html",
		func(w io.Writer, rep *report.Report, _ report.TextOptions) error { return htmlreport.Write(w, rep) },
		func(w io.Writer, d *report.Diff, old, new *report.Report, _ report.TextOptions) error {
			return htmlreport.WriteDiff(w, d, old, new)
		}},
}

// formatFlag is the --format enum of a command that writes a report
// (diff false) or a diff (diff true): the formats that have a renderer for
// it, text by default.
func formatFlag(diff bool) *enumFlag {
	var names []string
	for _, f := range outputFormats {
		if diff && f.diff != nil || !diff && f.report != nil {
			names = append(names, f.name)
		}
	}
	return newEnum(outputFormats[0].name, names...)
}

// lookupFormat returns the format named name; the flag has checked it is
// one of outputFormats.
func lookupFormat(name string) outputFormat {
	for _, f := range outputFormats {
		if f.name == name {
			return f
		}
	}
	return outputFormats[0]
}
