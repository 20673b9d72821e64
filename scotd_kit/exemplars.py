"""Few-shot CoT exemplars ``(x, rationale, y)`` for every task, in the kit's question formats.

Provenance, per set (checked against liunian-harold-li/scotd @ 21668aa, ``configs_data/complete``):

* ``commonsense_qa`` (7), ``openbookqa`` (4), ``quarel`` (5): VERIFIED -- SCoTD's teacher prompts,
  verbatim (the CSQA set is Wei et al. 2022's); the questions are rebuilt with the kit's task
  formatters and ``tests/test_corpus.py`` checks they equal SCoTD's strings.
* ``gsm8k`` / ``gsm8k_socratic`` / ``svamp``: VERIFIED text of Wei et al. 2022's eight math
  exemplars (as in SCoTD's ``svamp_local.py``), split into rationale and answer for the kit's
  `` So the answer is: `` format.
* ``strategyqa``: ADAPTED -- SCoTD's six StrategyQA exemplars (Wei et al.'s), with the labels
  lower-cased to the kit's ``yes`` / ``no`` and the ``Q: `` / ``Yes or no:`` prefixes dropped
  (the kit's prompt adds ``Q: ``).
* ``sst2`` / ``imdb``: ADAPTED -- SCoTD's SST-2 exemplars in the kit's sentiment format (the
  kit does not quote the sentence); IMDB uses the same sentences with the review prompt.
* ``anli_r3``: ADAPTED -- SCoTD's six ANLI exemplars in the kit's ANLI template (the kit's own,
  see tasks/anli.py), labels without SCoTD's trailing period.
* ``demo_compare`` / ``demo_arith``: the first training examples and their gold rationales.
"""
from __future__ import annotations

from .tasks import get_task, load_split
from .tasks.anli import format_question as anli_format
from .tasks.commonsense_qa import format_question as csqa_format
from .tasks.openbookqa import format_question as obqa_format
from .tasks.sentiment import REVIEW_PROMPT, SENTENCE_PROMPT

Exemplar = tuple[str, str, str]

# (stem, choices, rationale, label) -- SCoTD commonsenseqa.py FEW_SHOT_COT_PROMPT, verbatim
_CSQA = [
    ("What do people use to absorb extra ink from a fountain pen?",
     ["shirt pocket", "calligrapher's hand", "inkwell", "desk drawer", "blotter"],
     "The answer must be an item that can absorb ink. Of the above choices, only blotters are used to absorb ink.",
     "(e)"),
    ("What home entertainment equipment requires cable?",
     ["radio shack", "substation", "cabinet", "television", "desk"],
     "The answer must require cable. Of the above choices, only television requires cable.", "(d)"),
    ("The fox walked from the city into the forest, what was it looking for?",
     ["pretty flowers.", "hen house", "natural habitat", "storybook", "dense forest"],
     "The answer must be something in the forest. Of the above choices, only natural habitat is in the forest.",
     "(c)"),
    ("Sammy wanted to go to where the people were.  Where might he go?",
     ["race track", "populated areas", "the desert", "apartment", "roadblock"],
     "The answer must be a place with a lot of people. Of the above choices, only populated areas have a lot "
     "of people.", "(b)"),
    ("Where do you put your grapes just before checking out?",
     ["mouth", "grocery cart", "super market", "fruit basket", "fruit market"],
     "The answer should be the place where grocery items are placed before checking out. Of the above choices, "
     "grocery cart makes the most sense for holding grocery items.", "(b)"),
    ("Google Maps and other highway and street GPS services have replaced what?",
     ["united states", "mexico", "countryside", "atlas", "oceans"],
     "The answer must be something that used to do what Google Maps and GPS services do, which is to give "
     "directions. Of the above choices, only atlases are used to give directions.", "(d)"),
    ("Before getting a divorce, what did the wife feel who was doing all the work?",
     ["harder", "anguish", "bitterness", "tears", "sadness"],
     "The answer should be the feeling of someone getting divorced who was doing all the work. Of the above "
     "choices, the closest feeling is bitterness.", "(c)"),
]

# SCoTD openbook.py, verbatim (its typos included: they are what the teacher saw)
_OBQA = [
    ("Poison causes harm to which of the following?", ["a Tree", "a robot", "a house", "a car"],
     "Poison will harm living things, only a tree is a living thing.", "(a)"),
    ("As you look deeper into a Marbel you can see", ["the future", "minut defects", "colors", "the other side"],
     "Marbel is not transparent, so you can not see the other side. Marbel does not necessarily have multiple "
     "colors. You will see minut defects.", "(b)"),
    ("When food is reduced in the stomach",
     ["the mind needs time to digest", "take a second to digest what I said", "nutrients are being deconstructed",
      "reader's digest is a body of works"],
     "The food is being deconstructed in the stomach during digestion.", "(c)"),
    ("The sun is responsible for",
     ["puppies learning new tricks", "children growing up and getting old", "flowers wilting in a vase",
      "plants sprouting, blooming and wilting"],
     "The sun can affect the growing of living things, like plants.", "(d)"),
]

# SCoTD quarel.py, verbatim
_QUAREL: list[Exemplar] = [
    ("Mike was snowboarding on the snow and hit a piece of ice. He went much faster on the ice because _____ is "
     "smoother. (A) snow (B) ice",
     "When something is smoother, it is easier to slide on. Thus, he could go faster on the ice because ice is "
     "smoother.", "(B)"),
    ("I could hear then boy that say close to me clear as day, however I could not hear the young lady sitting in "
     "the back of the room.  WHo am I able to hear louder (A) Boy (B) Lady",
     "When someone is close, it is easier to hear them. I also could not hear the young lady well. Thus, I am able "
     "to hear the boy louder.", "(A)"),
    ("I watched the snowflakes go from tiny specks in the sky to a nice size once they fell on my face.  When did "
     "the snowflakes seem bigger (A) in the sky (B) on my face",
     "When something is closer, it seems bigger. The snowflakes is closer when they are on my face. Thus, they seem "
     "bigger when they are on my face.", "(B)"),
    ("When Tammy tried to slide the glass mixing bowl down the marble counter top to her mom, it came to a dead "
     "stop when it reached the wooden cutting board. The bowl came to a stop because the wooden cutting board has "
     "(A) more resistance or (B) less resistance",
     "When something has more resistance, it is harder to slide. Thus, the bowl came to a stop because the wooden "
     "cutting board has more resistance.", "(A)"),
    ("Sarah walked through the city and saw a tourist attraction she wanted to visit. She had several blocks to go "
     "to get to it, and the attraction looked very small. As she got close it though, it towered over her. This is "
     "because when she was close to it the attraction looked (A) much bigger (B) much smaller.",
     "When something is closer, it looks bigger. Thus, the attraction looked much bigger when she was close to it.",
     "(A)"),
]

# Wei et al. 2022's math exemplars (text verified; "The answer is N." became the label)
_MATH: list[Exemplar] = [
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
     "there will be 21 trees. How many trees did the grove workers plant today?",
     "We start with 15 trees. Later we have 21 trees. The difference must be the number of trees they planted. "
     "So, they must have planted 21 - 15 = 6 trees.", "6"),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are 3 cars in the parking lot already. 2 more arrive. Now there are 3 + 2 = 5 cars.", "5"),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Leah had 32 chocolates and Leah's sister had 42. That means there were originally 32 + 42 = 74 chocolates. "
     "35 have been eaten. So in total they still have 74 - 35 = 39 chocolates.", "39"),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did "
     "Jason give to Denny?",
     "Jason had 20 lollipops. Since he only has 12 now, he must have given the rest to Denny. The number of "
     "lollipops he has given to Denny must have been 20 - 12 = 8 lollipops.", "8"),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "He has 5 toys. He got 2 from mom, so after that he has 5 + 2 = 7 toys. Then he got 2 more from dad, so in "
     "total he has 7 + 2 = 9 toys.", "9"),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday to "
     "thursday. How many computers are now in the server room?",
     "There are 4 days from monday to thursday. 5 computers were added each day. That means in total 4 * 5 = 20 "
     "computers were added. There were 9 computers in the beginning, so now there are 9 + 20 = 29 computers.", "29"),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf "
     "balls did he have at the end of wednesday?",
     "Michael initially had 58 balls. He lost 23 on Tuesday, so after that he has 58 - 23 = 35 balls. On Wednesday "
     "he lost 2 more so now he has 35 - 2 = 33 balls.", "33"),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "She bought 5 bagels for $3 each. This means she spent 5 * $3 = $15 on the bagels. She had $23 in beginning, "
     "so now she has $23 - $15 = $8.", "8"),
]

# SCoTD strategyqa.py (Wei et al.'s), adapted: no "Q: " / "Yes or no: ", lower-case labels
_STRATEGYQA: list[Exemplar] = [
    ("Do hamsters provide food for any animals?",
     "Hamsters are prey animals. Prey are food for predators. Thus, hamsters provide food for some animals.", "yes"),
    ("Could Brooke Shields succeed at University of Pennsylvania?",
     "Brooke Shields went to Princeton University. Princeton University is about as academically rigorous as the "
     "University of Pennsylvania. Thus, Brooke Shields could also succeed at the University of Pennsylvania.", "yes"),
    ("Hydrogen's atomic number squared exceeds number of Spice Girls?",
     "Hydrogen has an atomic number of 1. 1 squared is 1. There are 5 Spice Girls. Thus, Hydrogen's atomic number "
     "squared is less than 5.", "no"),
    ("Is it common to see frost during some college commencements?",
     "College commencement ceremonies can happen in December, May, and June. December is in the winter, so there "
     "can be frost. Thus, there could be frost at some commencements.", "yes"),
    ("Could a llama birth twice during War in Vietnam (1945-46)?",
     "The War in Vietnam was 6 months. The gestation period for a llama is 11 months, which is more than 6 months. "
     "Thus, a llama could not give birth twice during the War in Vietnam.", "no"),
    ("Would a pear sink in water?",
     "The density of a pear is about 0.6 g/cm^3, which is less than water. Objects less dense than water float. "
     "Thus, a pear would float.", "no"),
]

# SCoTD sst2.py, adapted to the kit's sentiment format (sentence not quoted)
_SENTIMENT = [
    ("that loves its characters and communicates something rather beautiful about human nature",
     '"loves its characters" indicates positive sentiment.', "positive"),
    ("hide new secretions from the parental units",
     "If people are hiding something, it means the sentiment is on the negative side.", "negative"),
    ("the greatest musicians", 'By saying someone being the "greatest", it means positive sentiment.', "positive"),
    ("contains no wit , only labored gags", '"contains no wit" is clearly a negative sentiment.', "negative"),
    ("demonstrates that the director of such hollywood blockbusters as patriot games can still turn out a small , "
     "personal film with an emotional wallop .",
     '"can still turn out a small , personal film with an emotional wallop ." indicates sentiment on the positive '
     "side.", "positive"),
    ("that 's far too tragic to merit such superficial treatment",
     '"far too tragic" and "to merit such superficial treatment" both mean negative sentiments.', "negative"),
]

# SCoTD anli.py, adapted to the kit's ANLI template
_ANLI = [
    ("Conceptually cream skimming has two basic dimensions - product and geography.",
     "Product and geography are what make cream skimming work.",
     'Based on "cream skimming has two basic dimensions" we can’t infer that these two dimensions are what make '
     "cream skimming work.", "it is not possible to tell"),
    ("One of our member will carry out your instructions minutely.",
     "A member of my team will execute your orders with immense precision.",
     'one of" means the same as "a member of", "carry out" means the same as "execute", and "minutely" means the '
     'same as "immense precision".', "yes"),
    ("Fun for adults and children.", "Fun for only children.", '"adults and children" contradicts "only children".',
     "no"),
    ("He turned and smiled at Vrenna.", "He smiled at Vrenna who was walking slowly behind him with her mother.",
     'the premise does not say anything about "Vrenna was walking".', "it is not possible to tell"),
    ("well you see that on television also", "You can see that on television, as well.",
     '"also" and "as well" mean the same thing.', "yes"),
    ("Vrenna and I both fought him and he nearly took us.", "Neither Vrenna nor myself have ever fought him.",
     '"Vrenna and I both" contradicts "neither Vrenna nor myself".', "no"),
]

DEMO_SHOTS = 4


def _demo(task: str) -> list[Exemplar]:
    train = load_split(task, "train", limit=DEMO_SHOTS)
    return [(ex.question, ex.meta["rationale"], ex.label) for ex in train]


_BUILDERS = {
    "commonsense_qa": lambda: [(csqa_format(s, c), r, y) for s, c, r, y in _CSQA],
    "openbookqa": lambda: [(obqa_format(s, c), r, y) for s, c, r, y in _OBQA],
    "quarel": lambda: list(_QUAREL),
    "gsm8k": lambda: list(_MATH),
    "gsm8k_socratic": lambda: list(_MATH),
    "svamp": lambda: list(_MATH),
    "strategyqa": lambda: list(_STRATEGYQA),
    "sst2": lambda: [(f"{SENTENCE_PROMPT}\n{t}", r, y) for t, r, y in _SENTIMENT],
    "imdb": lambda: [(f"{REVIEW_PROMPT}\n{t}", r, y) for t, r, y in _SENTIMENT],
    "anli_r3": lambda: [(anli_format(p, h), r, y) for p, h, r, y in _ANLI],
    "demo_compare": lambda: _demo("demo_compare"),
    "demo_arith": lambda: _demo("demo_arith"),
}


def get_exemplars(task) -> list[Exemplar]:
    """The few-shot CoT exemplars of a task (a name or a TaskSpec): ``[(x, rationale, y), ...]``."""
    name = get_task(task).name if not isinstance(task, str) else task
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise KeyError(f"no built-in exemplars for task {name!r} (known: {', '.join(sorted(_BUILDERS))}); "
                       f"pass demos=[(x, rationale, y), ...] to sample_corpus") from None
