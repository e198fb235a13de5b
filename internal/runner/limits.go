package runner

// Output a task keeps in memory; the host log has all of it. A command's
// output goes to the log as it arrives, so these bound what a command
// printing gigabytes costs, whatever the number of hosts.
const (
	// TaskOutputKeep is what a task keeps of each stream of a command.
	TaskOutputKeep = 64 << 10
	// RegisteredOutputKeep is what a task whose result is registered keeps:
	// templates may read it, so it is more, but still bounded.
	RegisteredOutputKeep = 1 << 20
	// maxLine is the longest line handed to the log and the screen at once;
	// a longer one is passed on in pieces.
	maxLine = 64 << 10
)

// keep is what the running task keeps of each output stream.
func (h *hostRun) keep() int {
	if h.registers {
		return RegisteredOutputKeep
	}
	return TaskOutputKeep
}

// keepNote says where the output a task did not keep is.
func (h *hostRun) keepNote() string {
	if h.log == nil || h.log.path == "" {
		return "no log was written (no --log-dir)"
	}
	return "the whole output is in " + h.log.path
}
