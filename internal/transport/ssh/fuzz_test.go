package ssh

import "testing"

// FuzzSSHGOutput checks that no `ssh -G` output, however odd, panics the
// parser, and that a port it accepts is a port.
func FuzzSSHGOutput(f *testing.F) {
	for _, s := range []string{
		"host foo\nuser root\nhostname 10.1.2.3\nport 22\nidentityfile ~/.ssh/id_rsa\nproxycommand nc %h %p\n",
		"port 0\n",
		"port 99999\nconnecttimeout none\n",
		"userknownhostsfile /root/kh1 /tmp/kh2\nglobalknownhostsfile none\nstricthostkeychecking true\n",
		"proxyjump u@j1:2200,ssh://j2\nidentitiesonly yes\ncertificatefile ~/c.pub\nhostkeyalias x\n",
		"\n\nuser\nport\n",
	} {
		f.Add([]byte(s))
	}
	src := &sshGSource{home: "/home/me", pwHome: "/root", localUser: "me"}
	f.Fuzz(func(t *testing.T, out []byte) {
		o, err := src.parse("alias", "", out)
		if err == nil && (o.port < 0 || o.port > 65535) {
			t.Fatalf("port %d accepted", o.port)
		}
	})
}
