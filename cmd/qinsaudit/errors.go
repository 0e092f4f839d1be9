package main

import (
	"errors"
	"fmt"
	"io"
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

// exitCode prints err (if any) and returns the code for it. Errors that no
// command wrapped come from the command-line parser: usage errors.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	code := exitUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(stderr, "qinsaudit: %v\n", err)
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'qinsaudit help' for usage.")
	}
	return code
}

// gateFailed marks an outcome that fails a gate: a budget, a regression,
// a claim that disagrees with a measurement.
func gateFailed(err error) error { return &exitError{exitGate, err} }
