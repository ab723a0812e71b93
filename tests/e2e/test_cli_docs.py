"""The help, the man page and the shell completions come from one command
table: every command the help lists is in `mdscale help NOUN`, in the man
page and in both completion scripts, and the man page renders."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN


def mdscale(*args):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True,
                          timeout=30)


def listed_commands():
    out = mdscale("help").stdout
    cmds = []
    for line in out.splitlines():
        m = re.match(r"^  ([a-z][a-z ]*?[a-z])  +\S", line)
        if m and m.group(1) not in ("serve", "version"):
            cmds.append(m.group(1))
    return cmds


class CliDocsTest(unittest.TestCase):
    def test_help_lists_whole_sentences(self):
        cmds = listed_commands()
        self.assertGreater(len(cmds), 30)
        for line in mdscale("help").stdout.splitlines():
            m = re.match(r"^  ([a-z][a-z ]*?[a-z])  +(\S.*)$", line)
            if m and m.group(1) not in ("help [NOUN]",):
                self.assertTrue(m.group(2).endswith((".", ").")), line)

    def test_help_noun(self):
        for cmd in listed_commands():
            noun = cmd.split()[0]
            r = mdscale("help", noun)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("mdscale " + cmd, r.stdout)
        r = mdscale("help", "nosuchnoun")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("nosuchnoun", r.stderr)

    def test_man_page_and_completions_cover_every_command(self):
        man = mdscale("__doc", "man")
        bash = mdscale("__doc", "bash")
        zsh = mdscale("__doc", "zsh")
        for r in (man, bash, zsh):
            self.assertEqual(r.returncode, 0, r.stderr)
        for cmd in listed_commands():
            self.assertIn("mdscale " + cmd.replace("-", "\\-"), man.stdout)
            self.assertIn('"%s' % cmd, bash.stdout)
            self.assertIn("'%s:" % cmd, zsh.stdout)
        r = subprocess.run(["bash", "-n"], input=bash.stdout, text=True,
                           capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    @unittest.skipUnless(shutil.which("man"), "man is not installed")
    def test_man_page_renders(self):
        with tempfile.NamedTemporaryFile("w", suffix=".1") as f:
            f.write(mdscale("__doc", "man").stdout)
            f.flush()
            r = subprocess.run(["man", "-l", f.name], capture_output=True,
                               text=True, env=dict(os.environ, MANWIDTH="80",
                                                   MANPAGER="cat"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deployment create", r.stdout)
        self.assertNotIn("warning", r.stderr)

    def test_bash_completion_completes(self):
        script = mdscale("__doc", "bash").stdout
        probe = script + '''
COMP_WORDS=(mdscale deployment up); COMP_CWORD=2; _mdscale
echo "${COMPREPLY[@]}"
COMP_WORDS=(mdscale deployment update x --sh); COMP_CWORD=4; _mdscale
echo "${COMPREPLY[@]}"
'''
        r = subprocess.run(["bash", "-c", probe], capture_output=True,
                           text=True)
        self.assertEqual(r.stdout.splitlines(), ["update", "--shape"],
                         r.stderr)


if __name__ == "__main__":
    unittest.main()
