package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// run executes the command line args and returns the process exit code.
// It is main without the process: tests call it with buffers.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	return exitCode(root.Execute(), stderr)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "qinsaudit",
		Short: "Audit the memory accounting of compressed and quantized model weights",
		Long: `qinsaudit reads model files (PyTorch, safetensors, GGUF) header-only, classifies
every tensor, and accounts exactly for the bytes each one takes: its fp32
baseline, its theoretical size, and what the file really stores.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%s: %v", c.Name(), err)
	})
	root.AddCommand(newAuditCmd(stdout), newCheckCmd(stdout), newDiffCmd(stdout))
	root.AddCommand(newDecodeCmd(stdout))
	root.AddCommand(newCrosscheckCmd(stdout))
	root.AddCommand(newProfileCmd(stdout, stderr))
	return root
}

// enumFlag is a string flag that accepts only listed values, so a bad value
// fails while flags are parsed, naming the flag and the choices.
type enumFlag struct {
	value   string
	allowed []string
}

var _ pflag.Value = (*enumFlag)(nil)

func newEnum(def string, allowed ...string) *enumFlag {
	return &enumFlag{value: def, allowed: allowed}
}

func (e *enumFlag) String() string { return e.value }
func (e *enumFlag) Type() string   { return "string" }
func (e *enumFlag) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(e.allowed, ", "))
	}
	e.value = s
	return nil
}
