/* train/progress.c: training events as text or JSON lines (see progress.h).
 * The text progress line is a list of fields in priority order; cutting keeps the longest prefix of
 * whole fields that fits, and only a first field wider than the width itself is cut mid-field. */
#include "train/progress.h"

#include "train/train.h"
#include "util/err.h"
#include "util/sbuf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* "1m05s", "2h03m"; "?" when unknown (negative or not finite). */
static void fmt_time(char *buf, size_t cap, double s)
{
    if (s < 0 || !isfinite(s)) {
        snprintf(buf, cap, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

#define N_FIELDS 9
#define FIELD_MAX 64

/* The progress line's fields, most important first. */
static void log_fields(const struct train_progress *p, char f[N_FIELDS][FIELD_MAX])
{
    char t[32];
    snprintf(f[0], FIELD_MAX, "step %lld/%lld", (long long)p->step, (long long)p->total_steps);
    fmt_time(t, sizeof t, p->eta_s);
    snprintf(f[1], FIELD_MAX, "eta %s", t);
    snprintf(f[2], FIELD_MAX, "tok/s %.0f/%.0f", p->src_tok_s, p->tgt_tok_s);
    snprintf(f[3], FIELD_MAX, "loss %.4f", p->loss);
    snprintf(f[4], FIELD_MAX, "ppl %.2f", p->ppl);
    snprintf(f[5], FIELD_MAX, "lr %g", p->lr);
    snprintf(f[6], FIELD_MAX, "gnorm %.3g", p->grad_norm);
    snprintf(f[7], FIELD_MAX, "epoch %lld", (long long)p->epoch + 1);
    fmt_time(t, sizeof t, p->elapsed_s);
    snprintf(f[8], FIELD_MAX, "elapsed %s", t);
}

static int text_log(const struct train_progress *p, size_t width, struct sbuf *out)
{
    char f[N_FIELDS][FIELD_MAX];
    log_fields(p, f);
    const size_t room = width > 0 ? width - 1 : (size_t)-1;
    size_t used = 0;
    int rc = 0;
    for (int i = 0; i < N_FIELDS && !rc; i++) {
        size_t len = strlen(f[i]) + (i ? 1 : 0);
        if (used + len > room) {
            if (i == 0) /* not even the first field fits: as much of it as does */
                rc = sbuf_append(out, f[0], room);
            break;
        }
        rc = sbuf_printf(out, "%s%s", i ? " " : "", f[i]);
        used += len;
    }
    return rc;
}

static int text_line(const struct train_progress *p, size_t width, struct sbuf *out)
{
    switch (p->event) {
    case TRAIN_EV_LOG:
        return text_log(p, width, out);
    case TRAIN_EV_VALID:
        if (isnan(p->valid_bleu))
            return sbuf_printf(out, "step %lld: valid ppl %.3f (%.1f s)", (long long)p->step, p->valid_ppl,
                               p->valid_seconds);
        return sbuf_printf(out, "step %lld: valid ppl %.3f, BLEU %.2f, chrF2 %.2f on %lld sentences (%.1f s)",
                           (long long)p->step, p->valid_ppl, p->valid_bleu, p->valid_chrf,
                           (long long)p->valid_sents, p->valid_seconds);
    case TRAIN_EV_SAVE:
        return sbuf_printf(out, "step %lld: checkpoint %lld saved", (long long)p->step, (long long)p->checkpoint_id);
    case TRAIN_EV_NOTE:
        return sbuf_printf(out, "%s", p->note ? p->note : "");
    }
    return sl_err(SL_EINVAL, "unknown training event %d", (int)p->event);
}

/* ---- JSON ---- */

/* A number member of a JSON line. */
struct json_num {
    const char *key;
    double x; /* written with 9 significant digits; null when not finite */
};

/* ,"key":x for each of n[0..count). */
static int json_nums(struct sbuf *out, const struct json_num *n, size_t count)
{
    int rc = 0;
    for (size_t i = 0; i < count && !rc; i++)
        rc = isfinite(n[i].x) ? sbuf_printf(out, ",\"%s\":%.9g", n[i].key, n[i].x)
                              : sbuf_printf(out, ",\"%s\":null", n[i].key);
    return rc;
}

/* ,"key":"s" with s escaped as RFC 8259 requires (", \ and control characters). */
static int json_str(struct sbuf *out, const char *key, const char *s)
{
    int rc = sbuf_printf(out, ",\"%s\":\"", key);
    for (const unsigned char *c = (const unsigned char *)s; !rc && *c; c++) {
        if (*c == '"' || *c == '\\')
            rc = sbuf_printf(out, "\\%c", *c);
        else if (*c < 0x20)
            rc = sbuf_printf(out, "\\u%04x", *c);
        else
            rc = sbuf_putc(out, (char)*c);
    }
    return rc ? rc : sbuf_putc(out, '"');
}

static int json_line(const struct train_progress *p, struct sbuf *out)
{
    static const char *const names[] = {"log", "valid", "save", "note"};
    if ((unsigned)p->event >= sizeof names / sizeof names[0])
        return sl_err(SL_EINVAL, "unknown training event %d", (int)p->event);
    int rc = sbuf_printf(out, "{\"event\":\"%s\",\"run\":%lld,\"step\":%lld", names[p->event],
                         (long long)p->run_id, (long long)p->step);
    switch (p->event) {
    case TRAIN_EV_LOG: {
        const struct json_num n[] = {
            {"loss", p->loss}, {"ppl", p->ppl}, {"lr", p->lr}, {"gnorm", p->grad_norm},
            {"src_tok_s", p->src_tok_s}, {"tgt_tok_s", p->tgt_tok_s}, {"elapsed_s", p->elapsed_s},
            {"eta_s", p->eta_s >= 0 ? p->eta_s : NAN},
        };
        if (!rc)
            rc = sbuf_printf(out, ",\"total\":%lld,\"epoch\":%lld", (long long)p->total_steps,
                             (long long)p->epoch + 1);
        if (!rc)
            rc = json_nums(out, n, sizeof n / sizeof n[0]);
        break;
    }
    case TRAIN_EV_VALID: {
        const struct json_num n[] = {
            {"valid_ppl", p->valid_ppl}, {"valid_bleu", p->valid_bleu}, {"valid_chrf", p->valid_chrf},
            {"valid_s", p->valid_seconds},
        };
        if (!rc)
            rc = sbuf_printf(out, ",\"epoch\":%lld,\"valid_sents\":%lld,\"best_step\":%lld,\"stalled\":%lld",
                             (long long)p->epoch + 1, (long long)p->valid_sents, (long long)p->best_step,
                             (long long)p->stalled);
        if (!rc)
            rc = json_nums(out, n, sizeof n / sizeof n[0]);
        break;
    }
    case TRAIN_EV_SAVE:
        if (!rc)
            rc = sbuf_printf(out, ",\"checkpoint\":%lld", (long long)p->checkpoint_id);
        break;
    case TRAIN_EV_NOTE:
        if (!rc)
            rc = json_str(out, "message", p->note ? p->note : "");
        break;
    }
    return rc ? rc : sbuf_putc(out, '}');
}

int train_progress_format(const struct train_progress *p, enum train_log_format fmt, size_t width,
                          struct sbuf *out)
{
    int rc = fmt == TRAIN_LOG_JSON ? json_line(p, out) : text_line(p, width, out);
    return rc == SL_ENOMEM ? sl_err(SL_ENOMEM, "out of memory") : rc;
}
