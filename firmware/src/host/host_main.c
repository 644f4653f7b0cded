/* Host driver for a compiled model: reads int8 inputs of model_input_size bytes from stdin, one
   after another, and writes model_output_size bytes per input to stdout. Built with the host
   compiler, the kernels and a generated model.c; the tests compare its bytes with tflite-micro. */
#include <stdio.h>

#include "model.h"

int main(void)
{
    for (;;) {
        const size_t got = fread(model_input(), 1, model_input_size, stdin);
        if (got == 0 && feof(stdin)) break;
        if (got != model_input_size) {
            fprintf(stderr, "host_main: short input: %lu of %lu bytes\n", (unsigned long)got,
                    (unsigned long)model_input_size);
            return 1;
        }
        model_invoke();
        if (fwrite(model_output(), 1, model_output_size, stdout) != model_output_size) {
            fprintf(stderr, "host_main: write failed\n");
            return 1;
        }
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
