/* The DUT's main loop: boot the protocol layer (it initialises the UART and the clock through the
 * port), then feed it every received character. */
#include "internally_implemented.h"
#include "submitter_implemented.h"

int main(void) {
    ee_benchmark_initialize();
    for (;;) {
        ee_serial_callback(th_getchar());
    }
}
