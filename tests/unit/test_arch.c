/* tests/unit/test_arch.c - names, parsers, capabilities and the sealed registries. */
#include "image/image_impl.h"
#include "kiln/kiln.h"
#include "llm/model_impl.h"
#include "test.h"

static void test_family_names_round_trip(void) {
    const char *expected[] = {"stable-diffusion", "flux", "llama", "mistral", "qwen2", "phi2", "phi3"};
    CHECK_EQ_INT(KILN_ARCH_UNKNOWN, 7);
    for (int i = 0; i < KILN_ARCH_UNKNOWN; i++) {
        CHECK_EQ_STR(kiln_arch_name((kiln_arch)i), expected[i]);
        CHECK_EQ_INT(kiln_arch_from_name(expected[i]), i);
    }
    CHECK_EQ_INT(kiln_arch_worker(KILN_ARCH_FLUX), KILN_WORKER_IMAGE);
    CHECK_EQ_INT(kiln_arch_worker(KILN_ARCH_STABLE_DIFFUSION), KILN_WORKER_IMAGE);
    CHECK_EQ_INT(kiln_arch_worker(KILN_ARCH_PHI2), KILN_WORKER_LLM);
}

static void test_unknown_names_never_crash(void) {
    CHECK_EQ_INT(kiln_arch_from_name(NULL), KILN_ARCH_UNKNOWN);
    CHECK_EQ_INT(kiln_arch_from_name(""), KILN_ARCH_UNKNOWN);
    CHECK_EQ_INT(kiln_arch_from_name("Llama"), KILN_ARCH_UNKNOWN);
    CHECK_EQ_STR(kiln_arch_name(KILN_ARCH_UNKNOWN), "unknown");
    CHECK_EQ_STR(kiln_arch_name((kiln_arch)-1), "unknown");
    CHECK_EQ_STR(kiln_arch_name((kiln_arch)1000), "unknown");
    CHECK_EQ_INT(kiln_variant_from_name(NULL), KILN_VARIANT_UNKNOWN);
    CHECK_EQ_INT(kiln_variant_from_name("sd3"), KILN_VARIANT_UNKNOWN);
    CHECK_EQ_STR(kiln_variant_name((kiln_variant)99), "unknown");
    CHECK_EQ_INT(kiln_variant_family((kiln_variant)99), KILN_ARCH_UNKNOWN);
    CHECK(!kiln_variant_is_inpaint((kiln_variant)-5));
    CHECK_EQ_STR(kiln_status_str((kiln_status)12345), "unknown status");
    CHECK_EQ_STR(kiln_dtype_name((kiln_dtype)-1), "unknown");
}

static void test_variant_names_and_families(void) {
    const char *expected[] = {"sd1.5", "sd1.5-inpaint", "sd2.1", "sd2-inpaint", "sdxl",
                              "sdxl-inpaint", "sdxl-turbo", "flux-dev", "flux-schnell"};
    CHECK_EQ_INT(KILN_VARIANT_UNKNOWN, 9);
    for (int i = 0; i < KILN_VARIANT_UNKNOWN; i++) {
        CHECK_EQ_STR(kiln_variant_name((kiln_variant)i), expected[i]);
        CHECK_EQ_INT(kiln_variant_from_name(expected[i]), i);
        /* Names are static: the same pointer every time. */
        CHECK(kiln_variant_name((kiln_variant)i) == kiln_variant_name((kiln_variant)i));
    }
    CHECK_EQ_INT(kiln_variant_family(KILN_VARIANT_FLUX_DEV), KILN_ARCH_FLUX);
    CHECK_EQ_INT(kiln_variant_family(KILN_VARIANT_SDXL_TURBO), KILN_ARCH_STABLE_DIFFUSION);
    CHECK(kiln_variant_is_inpaint(KILN_VARIANT_SD2_INPAINT));
    CHECK(!kiln_variant_is_inpaint(KILN_VARIANT_SD21));
}

static void test_variant_caps(void) {
    kiln_image_caps caps;
    REQUIRE(kiln_variant_caps(KILN_VARIANT_SD15, &caps));
    CHECK_EQ_INT(caps.default_width, 512);
    CHECK_EQ_INT(caps.size_multiple, 8);
    CHECK(caps.guidance && caps.negative_prompt);
    REQUIRE(kiln_variant_caps(KILN_VARIANT_FLUX_SCHNELL, &caps));
    CHECK_EQ_INT(caps.size_multiple, 16);
    CHECK_EQ_INT(caps.default_steps, 4);
    CHECK(!caps.guidance);
    REQUIRE(kiln_variant_caps(KILN_VARIANT_SDXL_TURBO, &caps));
    CHECK_EQ_INT(caps.default_steps, 1);
    CHECK(!kiln_variant_caps(KILN_VARIANT_UNKNOWN, &caps));
    CHECK_EQ_INT(caps.default_width, 0);
    CHECK(!kiln_variant_caps(KILN_VARIANT_SD15, NULL));
}

static void test_llm_registry_is_complete(void) {
    for (int a = 0; a < KILN_ARCH_UNKNOWN; a++) {
        const struct kiln_llm_impl *impl = kiln__llm_impl((kiln_arch)a);
        if (kiln_arch_worker((kiln_arch)a) == KILN_WORKER_IMAGE) {
            CHECK(impl == NULL);
            continue;
        }
        REQUIRE(impl != NULL);
        CHECK_EQ_INT(impl->arch, a); /* the entry sits at its own index */
        CHECK(impl->reference != NULL);
    }
    CHECK(kiln__llm_impl(KILN_ARCH_UNKNOWN) == NULL);
    /* Quirks are data: spot-check the families' distinguishing traits. */
    CHECK(kiln__llm_impl(KILN_ARCH_QWEN2)->quirks.qkv_bias);
    CHECK(!kiln__llm_impl(KILN_ARCH_LLAMA)->quirks.qkv_bias);
    CHECK(kiln__llm_impl(KILN_ARCH_PHI2)->quirks.partial_rotary);
    CHECK(kiln__llm_impl(KILN_ARCH_PHI2)->quirks.parallel_block);
    CHECK_EQ_INT(kiln__llm_impl(KILN_ARCH_PHI2)->quirks.norm, KILN_NORM_LAYER);
    CHECK(kiln__llm_impl(KILN_ARCH_PHI3)->quirks.fused_qkv);
    CHECK_EQ_INT(kiln__llm_impl(KILN_ARCH_LLAMA)->quirks.rope, KILN_ROPE_INTERLEAVED);
    CHECK_EQ_INT(kiln__llm_impl(KILN_ARCH_QWEN2)->quirks.rope, KILN_ROPE_NEOX);
}

static void test_image_registry_is_complete(void) {
    for (int v = 0; v < KILN_VARIANT_UNKNOWN; v++) {
        const struct kiln_image_impl *impl = kiln__image_impl((kiln_variant)v);
        REQUIRE(impl != NULL);
        CHECK_EQ_INT(impl->variant, v);
        /* Inpainting variants take the extra mask and masked-image channels. */
        if (kiln_variant_is_inpaint((kiln_variant)v))
            CHECK_EQ_INT(impl->layout.denoiser_in_channels, 9);
    }
    CHECK(kiln__image_impl(KILN_VARIANT_UNKNOWN) == NULL);
    CHECK_EQ_INT(kiln__image_impl(KILN_VARIANT_SD21)->layout.text_width, 1024);
    CHECK_EQ_INT(kiln__image_impl(KILN_VARIANT_SD15)->layout.text_width, 768);
    CHECK_EQ_INT(kiln__image_impl(KILN_VARIANT_SDXL)->layout.text_width2, 1280);
}

static void test_dtype_table(void) {
    CHECK_EQ_INT(kiln_dtype_ggml_id(KILN_DTYPE_BF16), 30);
    CHECK_EQ_INT(kiln_dtype_from_ggml(12), KILN_DTYPE_Q4_K);
    CHECK_EQ_INT(kiln_dtype_from_ggml(4), KILN_DTYPE_UNKNOWN); /* removed Q4_2 */
    CHECK_EQ_INT(kiln_dtype_from_ggml(1000), KILN_DTYPE_UNKNOWN);
    CHECK_EQ_INT(kiln_dtype_block_bytes(KILN_DTYPE_Q6_K), 210);
    CHECK_EQ_INT(kiln_dtype_block_elems(KILN_DTYPE_Q8_0), 32);
    CHECK_EQ_INT(kiln_dtype_from_name("F8_E4M3"), KILN_DTYPE_F8_E4M3);
    CHECK_EQ_INT(kiln_dtype_ggml_id(KILN_DTYPE_U8), -1);
    CHECK_EQ_INT(kiln_dtype_block_bytes(KILN_DTYPE_UNKNOWN), 0);
}

int main(void) {
    RUN(test_family_names_round_trip);
    RUN(test_unknown_names_never_crash);
    RUN(test_variant_names_and_families);
    RUN(test_variant_caps);
    RUN(test_llm_registry_is_complete);
    RUN(test_image_registry_is_complete);
    RUN(test_dtype_table);
    return TEST_REPORT();
}
