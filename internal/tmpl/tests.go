package tmpl

import (
	"fmt"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// ansibleTests are `is …` tests beside the Jinja builtins: defined and
// undefined that understand strict undefined values, and Ansible's tests on
// registered task results.
func ansibleTests() map[string]exec.TestFunction {
	return map[string]exec.TestFunction{
		"defined":    testDefined,
		"undefined":  testUndefined,
		"changed":    resultTest("changed", "changed", false),
		"change":     resultTest("change", "changed", false),
		"failed":     resultTest("failed", "failed", false),
		"failure":    resultTest("failure", "failed", false),
		"skipped":    resultTest("skipped", "skipped", false),
		"skip":       resultTest("skip", "skipped", false),
		"success":    resultTest("success", "failed", true),
		"succeeded":  resultTest("succeeded", "failed", true),
		"successful": resultTest("successful", "failed", true),
	}
}

// testDefined is true for any value, none included, and false only for an
// undefined one; other evaluation errors stay errors.
func testDefined(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) (bool, error) {
	if in.IsError() {
		if isUndefined(in) {
			return false, nil
		}
		return false, rootCause(in)
	}
	return true, nil
}

func testUndefined(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) (bool, error) {
	defined, err := testDefined(e, in, params)
	return !defined, err
}

// resultTest checks a registered result's key; negate gives `success`,
// which is true when the result did not fail.
func resultTest(name, key string, negate bool) func(*exec.Evaluator, *exec.Value, *exec.VarArgs) (bool, error) {
	return func(_ *exec.Evaluator, in *exec.Value, _ *exec.VarArgs) (bool, error) {
		if in.IsError() {
			if u, ok := asUndefined(in.Error()); ok {
				return false, u
			}
			return false, rootCause(in)
		}
		if !in.IsDict() {
			return false, fmt.Errorf("the %q test needs a registered task result, got %s", name, describe(in))
		}
		v, ok := in.GetItem(key)
		flag := ok && !v.IsError() && v.IsTrue()
		return flag != negate, nil
	}
}
