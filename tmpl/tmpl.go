// Package tmpl renders Jinja2 templates (through gonja) the way playbooks
// use them: strings, `when:` expressions and whole argument trees.
package tmpl
