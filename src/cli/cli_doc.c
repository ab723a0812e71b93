/*
 * cli_doc.c - documentation generated from the command table: the summary
 * lines of `mdscale help`, `mdscale help NOUN`, the mdscale(1) man page and
 * the bash and zsh completion scripts. The build runs `mdscale __doc ...` to
 * make the installed files, so none of them can drift from --help.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "daemon/serve.h"

/* Option names in one command's usage text are at most this many. */
#define MAX_OPTS 48

void cli_print_summary(FILE *out, const char *help)
{
	const char *p;

	for (p = help; *p != '\0'; p++) {
		if (*p == '.' && (p[1] == '\0' || p[1] == ' ' || p[1] == '\n')) {
			fputc('.', out);
			return;
		}
		fputc(*p == '\n' ? ' ' : *p, out);
	}
}

/* Does the command belong to NOUN: its first word, or its whole name? */
static bool of_noun(const struct cli_cmd *c, const char *noun)
{
	size_t n = strlen(noun);

	return strncmp(c->name, noun, n) == 0 &&
	       (c->name[n] == ' ' || c->name[n] == '\0');
}

int cli_help_noun(const char *noun)
{
	const struct cli_cmd *c;
	int found = 0;

	if (strcmp(noun, "serve") == 0) {
		serve_help(stdout);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; (c = cli_cmd_at(i)) != NULL; i++) {
		if (!of_noun(c, noun))
			continue;
		printf("%smdscale %s%s%s\n\n%s\n", found ? "\n" : "", c->name,
		       *c->usage != '\0' ? " " : "", c->usage, c->help);
		found++;
	}
	if (found == 0) {
		cli_fail("no command '%s'; 'mdscale help' lists them", noun);
		return CLI_EXIT_USAGE;
	}
	printf("\n%s", cli_global_usage());
	return CLI_EXIT_OK;
}

/* ---- the man page ---- */

/* Prints text for roff: backslashes escaped, a line that would start with
 * a control character ('.' or '\'') guarded, tabs as spaces. */
static void roff_text(FILE *out, const char *s)
{
	bool bol = true;

	for (; *s != '\0'; s++) {
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", out);
		bol = *s == '\n';
		if (*s == '\\')
			fputs("\\e", out);
		else if (*s == '-')
			fputs("\\-", out);
		else if (*s == '\t')
			fputs("    ", out);
		else
			fputc(*s, out);
	}
}

/* Prints a usage text as one roff line: each run of white space (line
 * breaks and indentation included) becomes one space. */
static void roff_line(FILE *out, const char *s)
{
	char buf[1024];
	size_t n = 0;

	for (; *s != '\0' && n + 1 < sizeof buf; s++) {
		bool space = *s == '\n' || *s == '\t' || *s == ' ';

		if (!space)
			buf[n++] = *s;
		else if (n > 0 && buf[n - 1] != ' ' && s[1] != '\0')
			buf[n++] = ' ';
	}
	buf[n] = '\0';
	roff_text(out, buf);
}

static int doc_man(FILE *out)
{
	const struct cli_cmd *c;
	char serve[1024];
	FILE *mem;

	mem = fmemopen(serve, sizeof serve, "w");
	if (mem == NULL)
		return CLI_EXIT_FAIL;
	serve_usage(mem);
	fclose(mem);
	serve[sizeof serve - 1] = '\0';

	fprintf(out, ".TH MDSCALE 1 \"\" \"mdscale %s\" \"User Commands\"\n",
		MDS_VERSION);
	fputs(".SH NAME\nmdscale \\- autoscale model deployments (HTTP "
	      "inference endpoints)\n", out);
	fputs(".SH SYNOPSIS\n", out);
	roff_line(out, strncmp(serve, "usage: ", 7) == 0 ? serve + 7 : serve);
	fputs("\n.br\nmdscale [global options] COMMAND [ARGS]\n", out);
	fputs(".SH DESCRIPTION\n"
	      "\\fBmdscale serve\\fR is the daemon: it runs model deployments "
	      "as processes in cgroups behind its own gateway (or drives them "
	      "on a platform), watches their metrics, evaluates alarms written "
	      "in OCI's Monitoring Query Language and scales them through its "
	      "autoscale function, with zero downtime. Every other command is "
	      "a client of the daemon's REST API.\n", out);
	fputs(".SH COMMANDS\n", out);
	for (size_t i = 0; (c = cli_cmd_at(i)) != NULL; i++) {
		fputs(".TP\n\\fBmdscale ", out);
		roff_text(out, c->name);
		fputs("\\fR", out);
		if (*c->usage != '\0') {
			fputc(' ', out);
			roff_line(out, c->usage);
		}
		fputc('\n', out);
		roff_text(out, c->help);
		fputc('\n', out);
	}
	fputs(".TP\n\\fBmdscale version\\fR\nPrints the version.\n"
	      ".TP\n\\fBmdscale help\\fR [NOUN]\nLists the commands, or prints "
	      "every command of NOUN in full.\n", out);
	fputs(".SH GLOBAL OPTIONS\n.nf\n", out);
	roff_text(out, cli_global_usage());
	fputs(".fi\n", out);
	fputs(".SH EXIT STATUS\n"
	      "0 success; 1 the daemon refused or the operation failed; "
	      "2 a usage error; 3 the daemon cannot be reached.\n", out);
	fputs(".SH ENVIRONMENT\n"
	      ".TP\nMDSCALE_URL\nThe daemon's API (default " CLI_DEFAULT_URL
	      ").\n.TP\nMDSCALE_TOKEN\nThe API token, instead of the token "
	      "file.\n.TP\nMDSCALE_DATA\nThe data directory (default "
	      "$XDG_DATA_HOME/mdscale, ~/.local/share/mdscale, or "
	      "/var/lib/mdscale).\n", out);
	fputs(".SH FILES\n"
	      ".TP\nDATA/token\nThe API token, made at the first start "
	      "(mode 0600).\n.TP\nDATA/mdscale.db\nThe state: deployments, "
	      "work requests, alarms, topics, subscriptions.\n"
	      ".TP\nDATA/mdscale.db-reserve\n1 MiB kept in reserve, so that "
	      "a token can be revoked on a full disk.\n"
	      ".TP\nDATA/instances/\nEach instance's stdout and stderr.\n", out);
	fputs(".SH SEE ALSO\n\\fBsystemctl\\fR(1), \\fBjournalctl\\fR(1)\n",
	      out);
	return CLI_EXIT_OK;
}

/* ---- completion ---- */

/* Collects the distinct --options named in text into names (each pointing
 * into text, length in lens). */
static size_t collect_opts(const char *text, const char **names,
			   size_t *lens, size_t n)
{
	const char *p = text;

	while ((p = strstr(p, "--")) != NULL) {
		size_t len = 2;
		bool seen = false;

		while ((p[len] >= 'a' && p[len] <= 'z') ||
		       (p[len] >= '0' && p[len] <= '9') || p[len] == '-')
			len++;
		if (len == 2) {
			p += 2;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			seen |= lens[i] == len && strncmp(names[i], p, len) == 0;
		if (!seen && n < MAX_OPTS) {
			names[n] = p;
			lens[n++] = len;
		}
		p += len;
	}
	return n;
}

/* Prints the options of one command (and the global ones) separated by
 * spaces. */
static void print_opts(FILE *out, const struct cli_cmd *c)
{
	const char *names[MAX_OPTS];
	size_t lens[MAX_OPTS], n;

	n = collect_opts(c->usage, names, lens, 0);
	n = collect_opts(cli_global_usage(), names, lens, n);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%.*s", i ? " " : "", (int)lens[i], names[i]);
	fputs(" --help", out);
}

/* Prints the distinct first words of the command names. */
static void print_nouns(FILE *out)
{
	const struct cli_cmd *c, *d;

	fputs("serve version help", out);
	for (size_t i = 0; (c = cli_cmd_at(i)) != NULL; i++) {
		size_t len = strcspn(c->name, " ");
		bool seen = false;

		for (size_t j = 0; j < i && (d = cli_cmd_at(j)) != NULL; j++)
			seen |= strncmp(d->name, c->name, len) == 0 &&
				(d->name[len] == ' ' || d->name[len] == '\0');
		if (!seen)
			fprintf(out, " %.*s", (int)len, c->name);
	}
}

static int doc_bash(FILE *out)
{
	const struct cli_cmd *c;

	fputs("# bash completion for mdscale; generated by "
	      "`mdscale __doc bash`.\n"
	      "_mdscale() {\n"
	      "\tlocal cur=${COMP_WORDS[COMP_CWORD]} words\n"
	      "\tif [ \"$COMP_CWORD\" -eq 1 ]; then\n"
	      "\t\twords=\"", out);
	print_nouns(out);
	fputs("\"\n\telse\n\t\tcase \"${COMP_WORDS[1]} ${COMP_WORDS[2]}\" in\n",
	      out);
	for (size_t i = 0; (c = cli_cmd_at(i)) != NULL; i++) {
		bool one_word = strchr(c->name, ' ') == NULL;

		fprintf(out, "\t\t\"%s%s\"%s)\n\t\t\twords=\"", c->name,
			one_word ? " " : "", one_word ? "*" : "");
		print_opts(out, c);
		fputs("\" ;;\n", out);
	}
	fputs("\t\t*)\n\t\t\tcase \"${COMP_WORDS[1]}\" in\n", out);
	for (size_t i = 0; (c = cli_cmd_at(i)) != NULL; i++) {
		size_t len = strcspn(c->name, " ");
		const struct cli_cmd *d;
		bool first = true;

		if (c->name[len] == '\0')
			continue;
		for (size_t j = 0; j < i && (d = cli_cmd_at(j)) != NULL; j++)
			first &= !(strncmp(d->name, c->name, len) == 0 &&
				   d->name[len] == ' ');
		if (!first)
			continue;
		fprintf(out, "\t\t\t%.*s)\n\t\t\t\twords=\"", (int)len,
			c->name);
		for (size_t j = i; (d = cli_cmd_at(j)) != NULL; j++)
			if (strncmp(d->name, c->name, len) == 0 &&
			    d->name[len] == ' ')
				fprintf(out, "%s%s", j == i ? "" : " ",
					d->name + len + 1);
		fputs("\" ;;\n", out);
	}
	fputs("\t\t\tserve) words=\"--listen --gateway --data --config "
	      "--log-level --log-format --insecure-listen --help\" ;;\n"
	      "\t\t\thelp) words=\"", out);
	print_nouns(out);
	fputs("\" ;;\n\t\t\tesac ;;\n\t\tesac\n\tfi\n"
	      "\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
	      "}\ncomplete -F _mdscale mdscale\n", out);
	return CLI_EXIT_OK;
}

static int doc_zsh(FILE *out)
{
	const struct cli_cmd *c;

	fputs("#compdef mdscale\n# zsh completion for mdscale; generated by "
	      "`mdscale __doc zsh`.\n"
	      "local -a cmds\ncmds=(\n", out);
	for (size_t i = 0; (c = cli_cmd_at(i)) != NULL; i++) {
		fprintf(out, "  '%s:", c->name);
		for (const char *p = c->help; *p != '\0'; p++) {
			if (*p == '.' && (p[1] == '\0' || p[1] == ' ' ||
					  p[1] == '\n'))
				break;
			if (*p == '\'')
				fputs("'\\''", out);
			else if (*p == ':')
				fputs("\\:", out);
			else
				fputc(*p == '\n' ? ' ' : *p, out);
		}
		fputs("'\n", out);
	}
	fputs("  'serve:Runs the daemon'\n  'version:Prints the version'\n"
	      "  'help:Lists the commands'\n)\n"
	      "local line=\"${words[2,CURRENT-1]}\"\n"
	      "local -a opts\ncase \"$line\" in\n", out);
	for (size_t i = 0; (c = cli_cmd_at(i)) != NULL; i++) {
		fprintf(out, "  \"%s\"*) opts=(", c->name);
		print_opts(out, c);
		fputs(") ;;\n", out);
	}
	fputs("esac\n"
	      "if (( ${#opts} )); then\n"
	      "  compadd -- $opts\n"
	      "else\n"
	      "  local -a names\n"
	      "  local c\n"
	      "  for c in $cmds; do\n"
	      "    c=${c%%:*}\n"
	      "    [[ $c == \"$line\"* ]] && names+=(${${c#$line}%% *})\n"
	      "  done\n"
	      "  compadd -- ${(u)names}\n"
	      "fi\n", out);
	return CLI_EXIT_OK;
}

int cli_doc(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";

	if (strcmp(what, "man") == 0)
		return doc_man(stdout);
	if (strcmp(what, "bash") == 0)
		return doc_bash(stdout);
	if (strcmp(what, "zsh") == 0)
		return doc_zsh(stdout);
	cli_fail("__doc: expected man, bash or zsh");
	return CLI_EXIT_USAGE;
}
