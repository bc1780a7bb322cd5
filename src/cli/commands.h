/* src/cli/commands.h - the kiln subcommands. Each takes the arguments after
 * its name (argv[0] is the subcommand) and returns the process exit code. */
#ifndef KILN_CLI_COMMANDS_H
#define KILN_CLI_COMMANDS_H

int kiln_cmd_version(int argc, char **argv);
int kiln_cmd_info(int argc, char **argv);
int kiln_cmd_generate(int argc, char **argv);
int kiln_cmd_tokenize(int argc, char **argv);
int kiln_cmd_perplexity(int argc, char **argv);
int kiln_cmd_eval(int argc, char **argv);
int kiln_cmd_chat(int argc, char **argv);
int kiln_cmd_serve(int argc, char **argv);
int kiln_cmd_image(int argc, char **argv);
int kiln_cmd_bench(int argc, char **argv);
int kiln_cmd_bench_image(int argc, char **argv);

#endif /* KILN_CLI_COMMANDS_H */
