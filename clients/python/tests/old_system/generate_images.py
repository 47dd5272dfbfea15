"""
A copy of the old system's calling pattern, unchanged except the import line: find a usable
key under the caller's cap, call the provider with it, count the use after a success, and stop
when no key is left. The provider call is the only stand-in (keypool's tests never call
Stability): it "generates" and returns bytes, or fails for prompts that say "fail".
"""
import sys

# from stability_api_key import StabilityApiKey
from keypool_client.compat import StabilityApiKey


class ProviderError(Exception):
    pass


def call_stability(api_key, prompt):
    if "fail" in prompt:
        raise ProviderError("the provider refused the prompt")
    return ("image for " + prompt).encode("utf-8")


def generate_image(prompt):
    key = StabilityApiKey.find_usable_key(max_uses=3)
    if key is None:
        raise RuntimeError("No usable Stability API key found")
    print("using key with usage_count=%d" % key.usage_count)
    image = call_stability(key.api_key, prompt)
    StabilityApiKey.increment_usage(key.api_key)
    return image


if __name__ == "__main__":
    made = 0
    for prompt in sys.argv[1:]:
        try:
            generate_image(prompt)
            made += 1
        except ProviderError as error:
            print("provider error: %s" % error)
        except RuntimeError as error:
            print(str(error))
            break
    print("generated %d image(s)" % made)
