package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qinsaudit/qinsaudit/internal/version"
)

// run executes the command line args and returns the process exit code.
// It is main without the process: tests call it with buffers.
func run(args []string, stdout, stderr io.Writer) int {
	first := ""
	if len(args) > 0 {
		first = args[0]
	}
	root := newRoot(stdout, stderr, first)
	root.SetArgs(args)
	return exitCode(root.Execute(), stderr)
}

// newRoot makes the command tree. A process runs one command: when first
// (the first argument) names a subcommand, only that one is made, with no
// version flag and no completion command, which it cannot reach; a
// subcommand's own help names none of its siblings. Anything else (no
// argument, a flag, help, completion, a typo to suggest for) gets the whole
// tree. Making every subcommand's flags cost more than an empty Go
// process's whole run.
func newRoot(stdout, stderr io.Writer, first string) *cobra.Command {
	root := &cobra.Command{
		Use:   "qinsaudit",
		Short: "Audit the memory accounting of compressed and quantized model weights",
		Long: `qinsaudit reads model files (PyTorch, safetensors, GGUF) header-only, classifies
every tensor, and accounts exactly for the bytes each one takes: its fp32
baseline, its theoretical size, and what the file really stores.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("qinsaudit {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%s: %v", c.Name(), err)
	})
	// Cobra reports an unknown command from the root's argument check:
	// made here, it is marked a usage error like the others.
	root.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unknown command %q for %q", args[0], c.Name())
		}
		return nil
	}
	root.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
	commands := []struct {
		name string
		make func() *cobra.Command
	}{
		{"audit", func() *cobra.Command { return newAuditCmd(stdout) }},
		{"check", func() *cobra.Command { return newCheckCmd(stdout) }},
		{"diff", func() *cobra.Command { return newDiffCmd(stdout) }},
		{"decode", func() *cobra.Command { return newDecodeCmd(stdout) }},
		{"crosscheck", func() *cobra.Command { return newCrosscheckCmd(stdout) }},
		{"profile", func() *cobra.Command { return newProfileCmd(stdout, stderr) }},
		{"version", func() *cobra.Command { return newVersionCmd(stdout) }},
	}
	for _, c := range commands {
		if c.name == first {
			root.AddCommand(c.make())
			root.CompletionOptions.DisableDefaultCmd = true
			return root
		}
	}
	root.Version = version.String()
	for _, c := range commands {
		root.AddCommand(c.make())
	}
	return root
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print qinsaudit's version (module version and VCS revision)",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("version takes no arguments")
			}
			return nil
		},
		Run: func(c *cobra.Command, _ []string) { fmt.Fprintf(stdout, "qinsaudit %s\n", version.String()) },
	}
}

// deprecatedAlias defines old, a former name of the flag called name: it
// sets the same value, is not in the help, and says on stderr what the
// flag is called now.
func deprecatedAlias(c *cobra.Command, old, name string) {
	fl := c.Flags().Lookup(name)
	a := c.Flags().VarPF(aliasValue{Value: fl.Value, note: func() {
		fmt.Fprintf(c.ErrOrStderr(), "qinsaudit: --%s is now called --%s\n", old, name)
	}}, old, "", "former name of --"+name)
	a.NoOptDefVal = fl.NoOptDefVal
	a.Hidden = true
}

// aliasValue is a flag's value under a former name.
type aliasValue struct {
	pflag.Value
	note func()
}

func (a aliasValue) Set(s string) error {
	a.note()
	return a.Value.Set(s)
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

// enumVar defines the flag on c, with its choices in the help and in
// shell completion.
func enumVar(c *cobra.Command, e *enumFlag, name, usage string) {
	c.Flags().Var(e, name, usage+" ("+strings.Join(e.choices(), "|")+")")
	c.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return e.choices(), cobra.ShellCompDirectiveNoFileComp
	})
}

// choices are the values to offer: "" is allowed where it is the default
// (no --sort: file order), but it is not a choice.
func (e *enumFlag) choices() []string {
	return slices.DeleteFunc(slices.Clone(e.allowed), func(a string) bool { return a == "" })
}

func (e *enumFlag) String() string { return e.value }
func (e *enumFlag) Type() string   { return "string" }
func (e *enumFlag) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(e.choices(), ", "))
	}
	e.value = s
	return nil
}
