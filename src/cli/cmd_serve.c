/* src/cli/cmd_serve.c - `kiln serve`: run the worker daemon until SIGTERM
 * or SIGINT, then stop gracefully and exit 0 (1 when the model fails to
 * load, 2 for bad flags). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "core/log.h"
#include "kiln/kiln.h"
#include "worker/server.h"

static const char *env_lookup(const char *name) { return getenv(name); }

/* The backend the flags ask for, into *b; prints why not and returns 1. */
static int pick_backend(const struct kiln__worker_config *cfg, struct kiln__backend *b) {
    if (cfg->fake) {
        if (cfg->model_path[0]) {
            fprintf(stderr, "kiln serve: give -m MODEL or --fake-model, not both\n");
            return 2;
        }
        struct kiln__fake_options fo = {cfg->ctx, 0, cfg->fake_token_ms, cfg->fake_load_ms};
        if (kiln__backend_fake_create(&fo, b) != KILN_OK) {
            fprintf(stderr, "kiln serve: %s\n", kiln_last_error());
            return 1;
        }
        KILN_LOG_WARN("serving the fake test backend (--fake-model): its output is a fixed word sequence, not a model's");
        return 0;
    }
    if (!cfg->model_path[0]) {
        fprintf(stderr, "kiln serve: no model (give -m MODEL, or set KILN_MODEL)\n");
        return 2;
    }
    /* The model decides the engine: an image model (a diffusers folder or a
     * Stable Diffusion checkpoint) gets the image backend, anything else
     * the LLM engine (which says why when it is not a text model either). */
    kiln_status st = kiln__backend_is_image_model(cfg->model_path)
                         ? kiln__backend_image_create(cfg->model_path, cfg->clip_vocab, b)
                         : kiln__backend_llm_create(cfg->model_path, cfg->threads, cfg->ctx, b);
    if (st != KILN_OK) {
        fprintf(stderr, "kiln serve: %s\n", kiln_last_error());
        return 1;
    }
    return 0;
}

int kiln_cmd_serve(int argc, char **argv) {
    struct kiln__worker_config cfg;
    kiln__worker_config_defaults(&cfg);
    char err[512];
    enum kiln__config_result pr = kiln__worker_config_parse(&cfg, argc, argv, env_lookup, err, sizeof err);
    if (pr == KILN__CONFIG_HELP) {
        kiln__worker_config_usage(stdout);
        kiln__worker_config_free(&cfg);
        return 0;
    }
    if (pr == KILN__CONFIG_ERROR) {
        fprintf(stderr, "kiln serve: %s\n", err);
        kiln__worker_config_usage(stderr);
        kiln__worker_config_free(&cfg);
        return 2;
    }
    kiln__log_set_format(cfg.log_format);

    /* Signals are taken synchronously by this thread: block them before any
     * thread starts so every thread inherits the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct kiln__backend backend;
    int rc = pick_backend(&cfg, &backend);
    if (rc != 0) {
        kiln__worker_config_free(&cfg);
        return rc;
    }
    struct kiln__worker *w = NULL;
    if (kiln__worker_start(&cfg, &backend, &w) != KILN_OK) {
        KILN_LOG_ERROR("%s", kiln_last_error());
        kiln__worker_config_free(&cfg);
        return 1;
    }
    kiln__worker_config_free(&cfg);
    rc = 0;
    for (;;) {
        struct timespec tick = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&stop_signals, NULL, &tick);
        if (sig > 0) {
            KILN_LOG_INFO("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (kiln__worker_get_phase(w) == KILN__PHASE_FAILED) {
            rc = 1;
            break;
        }
    }
    kiln__worker_stop(w);
    return rc;
}
