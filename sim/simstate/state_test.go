package simstate

import (
	"os/exec"
	"testing"
	"time"
)

func TestAZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	start, err := ProcStart(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p := Proc{PID: cmd.Process.Pid, Start: start}
	if !p.Alive() {
		t.Fatal("a running process is not alive")
	}
	if (Proc{PID: p.PID, Start: start + 1}).Alive() {
		t.Error("a process with another start time is alive")
	}
	// Killed and not reaped yet: a zombie.
	_ = cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for p.Alive() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.Alive() {
		t.Error("a killed, unreaped process is alive")
	}
	_ = cmd.Wait()
	if p.Alive() {
		t.Error("a reaped process is alive")
	}
}
