#ifndef REDLINE_CGPIOD_SHIM_H
#define REDLINE_CGPIOD_SHIM_H
#include <gpiod.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* errno after a failed libgpiod call (Swift cannot read the errno macro portably). */
static inline int redline_gpiod_errno(void) { return errno; }
static inline void redline_gpiod_clear_errno(void) { errno = 0; }

/* Request a line as an output driving `initial` (a logical value: with
   active_low the physical level is inverted by the kernel). */
static inline int redline_gpiod_request_output(struct gpiod_line *line, const char *consumer,
                                               bool active_low, int initial) {
    int flags = active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
    return gpiod_line_request_output_flags(line, consumer, flags, initial);
}

/* Request a line as an input; values read are logical (inverted with active_low). */
static inline int redline_gpiod_request_input(struct gpiod_line *line, const char *consumer,
                                              bool active_low) {
    int flags = active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
    return gpiod_line_request_input_flags(line, consumer, flags);
}
#endif
