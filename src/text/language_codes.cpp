// Language codes of the sequence-to-sequence tokenizers (mBART-50, NLLB, M2M100, Marian):
// the lists their transformers classes define (FAIRSEQ_LANGUAGE_CODES of
// tokenization_mbart50_fast.py, tokenization_nllb_fast.py, tokenization_m2m_100.py), and the
// post-processors their set_src_lang_special_tokens / set_tgt_lang_special_tokens build:
//   mBART-50, NLLB:          [lang] X [eos]
//   NLLB legacy_behaviour:   X [eos, lang]
//   M2M100:                  [__lang__] X [eos]
//   Marian:                  X [eos] (the language, if any, is a >>code<< in the text)
#include <algorithm>

#include "core/error.h"
#include "text/tokenizer_impl.h"

namespace hfpipe::text {

namespace {

const std::vector<std::string> kMbart50 = {
    "ar_AR", "cs_CZ", "de_DE", "en_XX", "es_XX", "et_EE", "fi_FI", "fr_XX", "gu_IN", "hi_IN", "it_IT",
    "ja_XX", "kk_KZ", "ko_KR", "lt_LT", "lv_LV", "my_MM", "ne_NP", "nl_XX", "ro_RO", "ru_RU", "si_LK",
    "tr_TR", "vi_VN", "zh_CN", "af_ZA", "az_AZ", "bn_IN", "fa_IR", "he_IL", "hr_HR", "id_ID", "ka_GE",
    "km_KH", "mk_MK", "ml_IN", "mn_MN", "mr_IN", "pl_PL", "ps_AF", "pt_XX", "sv_SE", "sw_KE", "ta_IN",
    "te_IN", "th_TH", "tl_XX", "uk_UA", "ur_PK", "xh_ZA", "gl_ES", "sl_SI",
};
const std::vector<std::string> kNllb = {
    "ace_Arab", "ace_Latn", "acm_Arab", "acq_Arab", "aeb_Arab", "afr_Latn", "ajp_Arab", "aka_Latn",
    "amh_Ethi", "apc_Arab", "arb_Arab", "ars_Arab", "ary_Arab", "arz_Arab", "asm_Beng", "ast_Latn",
    "awa_Deva", "ayr_Latn", "azb_Arab", "azj_Latn", "bak_Cyrl", "bam_Latn", "ban_Latn", "bel_Cyrl",
    "bem_Latn", "ben_Beng", "bho_Deva", "bjn_Arab", "bjn_Latn", "bod_Tibt", "bos_Latn", "bug_Latn",
    "bul_Cyrl", "cat_Latn", "ceb_Latn", "ces_Latn", "cjk_Latn", "ckb_Arab", "crh_Latn", "cym_Latn",
    "dan_Latn", "deu_Latn", "dik_Latn", "dyu_Latn", "dzo_Tibt", "ell_Grek", "eng_Latn", "epo_Latn",
    "est_Latn", "eus_Latn", "ewe_Latn", "fao_Latn", "pes_Arab", "fij_Latn", "fin_Latn", "fon_Latn",
    "fra_Latn", "fur_Latn", "fuv_Latn", "gla_Latn", "gle_Latn", "glg_Latn", "grn_Latn", "guj_Gujr",
    "hat_Latn", "hau_Latn", "heb_Hebr", "hin_Deva", "hne_Deva", "hrv_Latn", "hun_Latn", "hye_Armn",
    "ibo_Latn", "ilo_Latn", "ind_Latn", "isl_Latn", "ita_Latn", "jav_Latn", "jpn_Jpan", "kab_Latn",
    "kac_Latn", "kam_Latn", "kan_Knda", "kas_Arab", "kas_Deva", "kat_Geor", "knc_Arab", "knc_Latn",
    "kaz_Cyrl", "kbp_Latn", "kea_Latn", "khm_Khmr", "kik_Latn", "kin_Latn", "kir_Cyrl", "kmb_Latn",
    "kon_Latn", "kor_Hang", "kmr_Latn", "lao_Laoo", "lvs_Latn", "lij_Latn", "lim_Latn", "lin_Latn",
    "lit_Latn", "lmo_Latn", "ltg_Latn", "ltz_Latn", "lua_Latn", "lug_Latn", "luo_Latn", "lus_Latn",
    "mag_Deva", "mai_Deva", "mal_Mlym", "mar_Deva", "min_Latn", "mkd_Cyrl", "plt_Latn", "mlt_Latn",
    "mni_Beng", "khk_Cyrl", "mos_Latn", "mri_Latn", "zsm_Latn", "mya_Mymr", "nld_Latn", "nno_Latn",
    "nob_Latn", "npi_Deva", "nso_Latn", "nus_Latn", "nya_Latn", "oci_Latn", "gaz_Latn", "ory_Orya",
    "pag_Latn", "pan_Guru", "pap_Latn", "pol_Latn", "por_Latn", "prs_Arab", "pbt_Arab", "quy_Latn",
    "ron_Latn", "run_Latn", "rus_Cyrl", "sag_Latn", "san_Deva", "sat_Beng", "scn_Latn", "shn_Mymr",
    "sin_Sinh", "slk_Latn", "slv_Latn", "smo_Latn", "sna_Latn", "snd_Arab", "som_Latn", "sot_Latn",
    "spa_Latn", "als_Latn", "srd_Latn", "srp_Cyrl", "ssw_Latn", "sun_Latn", "swe_Latn", "swh_Latn",
    "szl_Latn", "tam_Taml", "tat_Cyrl", "tel_Telu", "tgk_Cyrl", "tgl_Latn", "tha_Thai", "tir_Ethi",
    "taq_Latn", "taq_Tfng", "tpi_Latn", "tsn_Latn", "tso_Latn", "tuk_Latn", "tum_Latn", "tur_Latn",
    "twi_Latn", "tzm_Tfng", "uig_Arab", "ukr_Cyrl", "umb_Latn", "urd_Arab", "uzn_Latn", "vec_Latn",
    "vie_Latn", "war_Latn", "wol_Latn", "xho_Latn", "ydd_Hebr", "yor_Latn", "yue_Hant", "zho_Hans",
    "zho_Hant", "zul_Latn",
};
const std::vector<std::string> kM2M100 = {
    "af", "am", "ar", "ast", "az", "ba", "be", "bg", "bn", "br", "bs", "ca", "ceb", "cs", "cy", "da", "de",
    "el", "en", "es", "et", "fa", "ff", "fi", "fr", "fy", "ga", "gd", "gl", "gu", "ha", "he", "hi", "hr",
    "ht", "hu", "hy", "id", "ig", "ilo", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "lb", "lg",
    "ln", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "my", "ne", "nl", "no", "ns", "oc", "or",
    "pa", "pl", "ps", "pt", "ro", "ru", "sd", "si", "sk", "sl", "so", "sq", "sr", "ss", "su", "sv", "sw",
    "ta", "th", "tl", "tn", "tr", "uk", "ur", "uz", "vi", "wo", "xh", "yi", "yo", "zh", "zu",
};
const std::vector<std::string> kWmt21 = {
    "en", "ha", "is", "ja", "cs", "ru", "zh", "de",
};

std::string known_codes(const LanguageCodes& l) {
  std::string s;
  for (size_t i = 0; i < l.codes.size(); ++i) s += (i ? ", " : "") + l.codes[i];
  return s.empty() ? "(none)" : s;
}

const char* class_name(LangStyle s) {
  switch (s) {
    case LangStyle::Marian: return "MarianTokenizer";
    case LangStyle::MBart50: return "MBart50TokenizerFast";
    case LangStyle::Nllb: return "NllbTokenizerFast";
    case LangStyle::M2M100: return "M2M100Tokenizer";
    default: return "this tokenizer";
  }
}

// The template "[prefix] $A [suffix]" (pair: "[prefix] $A $B [suffix]") for one language.
std::unique_ptr<PostProcessor> language_template(const Tokenizer::Impl& impl, const std::optional<std::string>& code,
                                                 const char* which) {
  auto eos_it = impl.special_tokens.find("eos_token");
  if (eos_it == impl.special_tokens.end())
    fail(ErrorKind::CorruptFile, std::string(class_name(impl.lang.style)) + " folder has no eos_token");
  const std::string& eos = eos_it->second;
  auto eos_id = impl.added.token_to_id(eos, *impl.model);
  if (!eos_id) fail(ErrorKind::CorruptFile, "the eos token '" + eos + "' has no id");
  std::vector<std::pair<std::string, uint32_t>> prefix, suffix{{eos, *eos_id}};
  if (impl.lang.style != LangStyle::Marian) {
    if (!code)
      fail(ErrorKind::InvalidArgument, std::string(class_name(impl.lang.style)) + ": " + which +
                                           " is not set; set it to one of: " + known_codes(impl.lang));
    std::pair<std::string, uint32_t> lang{language_token(impl, *code), language_token_id(impl, *code)};
    if (impl.lang.style == LangStyle::Nllb && impl.lang.legacy_behaviour)
      suffix.push_back(lang);
    else
      prefix.push_back(lang);
  }
  std::string single, pair, tail;
  std::map<std::string, TemplateSpecialToken> st;
  for (const auto& [tok, id] : prefix) {
    single += tok + ":0 ";
    st[tok] = TemplateSpecialToken{{id}, {tok}};
  }
  pair = single + "$A:0 $B:0";
  single += "$A:0";
  for (const auto& [tok, id] : suffix) {
    tail += " " + tok + ":0";
    st[tok] = TemplateSpecialToken{{id}, {tok}};
  }
  // parse_template splits on spaces: special tokens are referred to by their content, which
  // never holds a space in these vocabularies.
  return make_template_processing(parse_template(single + tail, "language template"),
                                  parse_template(pair + tail, "language template"), std::move(st),
                                  "language template");
}

}  // namespace

const std::vector<std::string>& fairseq_language_codes(const std::string& which) {
  static const std::vector<std::string> none;
  if (which == "mbart50") return kMbart50;
  if (which == "nllb") return kNllb;
  if (which == "m2m100") return kM2M100;
  if (which == "wmt21") return kWmt21;
  return none;
}

std::string language_token(const Tokenizer::Impl& impl, const std::string& code) {
  const LanguageCodes& l = impl.lang;
  if (l.style == LangStyle::None)
    fail(ErrorKind::InvalidArgument, "this tokenizer (" + impl.tokenizer_class + ") has no language codes");
  if (std::find(l.codes.begin(), l.codes.end(), code) == l.codes.end())
    fail(ErrorKind::InvalidArgument, std::string(class_name(l.style)) + ": unknown language code '" + code +
                                         "'; known codes: " + known_codes(l));
  return l.style == LangStyle::M2M100 ? "__" + code + "__" : code;
}

uint32_t language_token_id(const Tokenizer::Impl& impl, const std::string& code) {
  std::string tok = language_token(impl, code);
  const LanguageCodes& l = impl.lang;
  if (l.style == LangStyle::M2M100) {
    // get_lang_id: len(vocab.json) + the code's position in the list.
    size_t i = size_t(std::find(l.codes.begin(), l.codes.end(), code) - l.codes.begin());
    return l.m2m100_first_id + uint32_t(i);
  }
  auto id = impl.added.token_to_id(tok, *impl.model);
  if (!id) fail(ErrorKind::CorruptFile, "language token '" + tok + "' is not in the vocabulary");
  return *id;
}

void apply_language_codes(Tokenizer::Impl& impl) {
  if (impl.lang.style == LangStyle::None) return;
  impl.post_processor = language_template(impl, impl.lang.src, "src_lang");
  // The target template needs tgt_lang; without one, text_target is refused at encode time.
  impl.target_post_processor.reset();
  if (impl.lang.style == LangStyle::Marian || impl.lang.tgt)
    impl.target_post_processor = language_template(impl, impl.lang.tgt, "tgt_lang");
}

}  // namespace hfpipe::text
