#include <openvino/core/extension.hpp>
#include <openvino/core/op_extension.hpp>

#include "infllm_v2_attention.hpp"

OPENVINO_CREATE_EXTENSIONS(std::vector<ov::Extension::Ptr>(
    {std::make_shared<ov::OpExtension<cpmdesk::InfLLMv2Attention>>()}));
