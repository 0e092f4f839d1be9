package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/qinsaudit/qinsaudit/internal/neutral"
)

// Exit codes. Every outcome of a command maps to one of these; docs/exit-codes.md
// and the manual (doc.go) list them.
const (
	exitOK       = 0 // the command ran; any gate passed
	exitBadInput = 1 // a file could not be read or is malformed
	exitUsage    = 2 // bad flags or arguments
	exitGate     = 3 // a gate failed: budget, regression, claim
)

// exitError carries an exit code with the error that caused it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func badInput(err error) error { return &exitError{exitBadInput, err} }

func usageErrorf(format string, args ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, args...)}
}

// exitCode prints err (if any) and returns the code for it. Usage errors
// are marked where they arise: the flag parser (SetFlagErrorFunc), the
// argument validators, the commands' own checks of flag values. Any other
// error no command marked (an output that could not be written, an
// internal failure, a resource limit) is not the user's usage: exit 1.
//
// The message is neutralised (neutral.Message): it may quote a tensor
// name, a claim name or a config value, escaped and clipped.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	code := exitBadInput
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(stderr, "qinsaudit: %s\n", neutral.Message(err.Error()))
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'qinsaudit help' for usage.")
	}
	return code
}

// gateFailed marks an outcome that fails a gate: a budget, a regression,
// a claim that disagrees with a measurement.
func gateFailed(err error) error { return &exitError{exitGate, err} }

// writeFailed marks a failure to write the output (a full disk, a closed
// pipe): exit 1, never a usage error.
func writeFailed(err error) error {
	if err == nil {
		return nil
	}
	return badInput(fmt.Errorf("writing the output: %w", err))
}
