// Package cli is nixbook's command line.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	ucli "github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/nixbook/nixbook/internal/cliargs"
)

// usageError marks errors found before any host is touched (exit 1).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usage(err error) error { return usageError{err} }

// exitCode carries a run's exit code out of an action.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// env is what a command reads from and writes to; tests substitute it.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signalContext(context.Background(), stderr, os.Exit)
	defer stop()
	e := &env{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	app := e.app()
	err := app.RunContext(ctx, cliargs.Interspersed(app, verbosity(args)))
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	default:
		fmt.Fprintf(stderr, "nixbook: %v\n", err)
		return ExitUsage
	}
}

func (e *env) app() *ucli.App {
	app := &ucli.App{
		Name:                 "nixbook",
		Usage:                "reinstall fleets of dedicated servers with NixOS, playbook by playbook",
		Version:              version(),
		HideVersion:          true,
		Writer:               e.stdout,
		ErrWriter:            e.stderr,
		EnableBashCompletion: true,
		// Each -e, -i or -t value is taken whole: a JSON object or k=a,b
		// holds commas. Lists are split where a flag means a list.
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*ucli.Context, error) {}, // Main maps errors to exit codes
		OnUsageError: func(c *ucli.Context, err error, _ bool) error {
			return usage(err)
		},
		Commands: []*ucli.Command{
			e.runCommand(),
			e.validateCommand(),
			e.inventoryCommand(),
			e.factsCommand(),
			e.generateCommand(),
			e.modulesCommand(),
			e.docCommand(),
			e.playbooksCommand(),
			e.knownHostsCommand(),
			e.ovhCommand(),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *ucli.Context) error {
					fmt.Fprintf(e.stdout, "nixbook %s\n", version())
					return nil
				},
			},
			e.completionCommand(),
		},
	}
	// Every command takes its defaults from the config file.
	var configure func([]*ucli.Command)
	configure = func(cmds []*ucli.Command) {
		for _, cmd := range cmds {
			cmd.Before = e.applyConfig
			configure(cmd.Subcommands)
		}
	}
	configure(app.Commands)
	app.Commands = append(app.Commands, e.completeCommand(app), e.manCommand(app))
	return app
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// colorEnabled follows --no-color, NO_COLOR and whether w is a terminal.
func (e *env) colorEnabled(c *ucli.Context, w io.Writer) bool {
	if c.Bool("no-color") || e.getenv("NO_COLOR") != "" {
		return false
	}
	return isTerminal(w)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if wd, _, err := term.GetSize(int(f.Fd())); err == nil && wd > 20 {
			return wd
		}
	}
	return 100
}
