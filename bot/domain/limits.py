"""Slack's limits that the bot's messages, views and menus must stay within (Block Kit reference,
views reference, options responses). IAM's limits live with the rules that enforce them
(:mod:`bot.domain.rules`, :mod:`bot.domain.tags`, :mod:`bot.domain.quotas`)."""

from __future__ import annotations

OPTION_TEXT_MAX = 75  # an option's text
OPTION_VALUE_MAX = 150  # an option's value
OPTIONS_MAX = 100  # options (or option groups) in one options response or static menu
SECTION_TEXT_MAX = 3000  # a section block's text
MESSAGE_BLOCKS_MAX = 50  # blocks in a message (chat.postMessage, chat.update)
MESSAGE_TEXT_MAX = 40_000  # a message's text: Slack truncates longer ones (changelog 2018-04)
# What the bot puts in the code blocks of one message: Slack refuses a message whose blocks hold
# much more in all (msg_blocks_too_long, seen near 13,000 characters and not documented), so a
# message carries a few sections of commands and points to the whole script.
MESSAGE_CODE_CHARS = 9_000
VIEW_BLOCKS_MAX = 100  # blocks in a modal or Home view
HEADER_TEXT_MAX = 150  # a header block's text
BUTTON_TEXT_MAX = 75  # a button's text
