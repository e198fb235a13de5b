package runner

import "github.com/nixbook/nixbook/internal/secrets"

// redactor hides secret values, and what filters derive from them,
// wherever they would appear in output or logs.
type redactor = secrets.Redactor

// newRedactor collects the values of every secret-looking variable, at any
// depth, so that a secret passed through a template is still hidden.
func newRedactor(vars map[string]any) *redactor {
	return secrets.NewRedactor(secrets.Values(vars))
}

// learnSecrets adds the secret-named values among the play and task vars,
// as rendered into vars, to the host's redactor.
func (h *hostRun) learnSecrets(vars map[string]any, defined ...map[string]any) {
	if h.redact == nil {
		return // validate: nothing is shown
	}
	rendered := map[string]any{}
	for _, d := range defined {
		for k := range d {
			rendered[k] = vars[k]
		}
	}
	if len(rendered) > 0 {
		h.redact.Add(secrets.Values(rendered)...)
	}
}
