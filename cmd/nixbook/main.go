// Command nixbook runs YAML playbooks over SSH on fleets of servers.
package main

import (
	"os"

	"github.com/nixbook/nixbook/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args, os.Stdout, os.Stderr)) }
